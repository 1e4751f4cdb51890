#!/usr/bin/env python
"""Mutation check: do the tests catch small, realistic bugs?

Each mutation below names a file, the exact text it replaces (which must occur exactly once),
the replacement, and the tests that must catch it. The script copies the checkout (tracked
and untracked-but-not-ignored files) to a scratch folder once, then for each mutation: writes
the mutated file, runs its tests there with pytest (-x, stop at the first failure), and
restores the file. A mutant is killed when pytest reports a failing test (exit status 1).

  python scripts/mutation_check.py              # every mutation (about 20-40 min on 2 cores)
  python scripts/mutation_check.py --list       # the mutations, nothing run
  python scripts/mutation_check.py --check      # every mutation still applies? (seconds; in CI)
  python scripts/mutation_check.py --only lerp-ref-frac-clamp cpu-c-step
  nice -n 10 python scripts/mutation_check.py --keep   # keep the scratch copy for a look

Prints a table (mutation, file, killed by) and, as its last line, one JSON object
{"mutants": N, "killed": K, "seconds": S}. Exits 1 when a mutant survives, 2 when a mutation
no longer applies (its text moved: update the list below). The mutants themselves are not
run in CI (tests/test_mutation_check.py runs only --check): run this after changing the
kernels, the activations, checkpoint loading, training, QAT, the ONNX export or the RTL.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str          # file, relative to the repository root
    old: str           # exact text, must occur exactly once
    new: str
    tests: tuple       # test files (or file::test node ids) that must catch it
    what: str          # the bug, in words
    k: str = ""        # pytest -k expression selecting the tests of those files that matter
    strict: bool = False  # run with REPRO_STRICT_ORACLES=1: a missing tool (Verilator) fails

    def __post_init__(self):
        if self.old == self.new:
            raise ValueError(f"{self.name}: old and new are the same")


M = Mutation
KREF, KFAST = "tests/test_kernels_reference.py", "tests/test_kernels_fast.py"
KFASTPATH = "tests/test_fast_path.py"
MUTATIONS = [
    # ---------------------------------------------------------------- reference kernels
    M("ref-lerp-frac-clamped", "kernels/backends/reference.py",
      "    return j.long(), u - j\n\n\ndef _flat_index",
      "    return j.long(), (u - j).clamp(0, 1)\n\n\ndef _flat_index",
      (KREF,), "LERP clamps the fraction: no extrapolation past the grid", k="lerp"),
    M("ref-lerp-grad-x-step", "kernels/backends/reference.py",
      "gx = ((t[idx + 1] - t[idx]) * grid_scale(G, grid_range) * g).to(x.dtype)",
      "gx = ((t[idx + 1] - t[idx]) / grid_scale(G, grid_range) * g).to(x.dtype)",
      (KREF,), "LERP input gradient divides by 1/h (multiplies by the step)", k="lerp"),
    M("ref-scatter-weights-swapped", "kernels/backends/reference.py",
      "acc.index_add_(0, flat, ((1.0 - frac) * g).reshape(-1))",
      "acc.index_add_(0, flat, (frac * g).reshape(-1))",
      (KREF,), "table/coefficient gradient: left weight frac instead of 1 - frac", k="lerp"),
    M("ref-bspline-top-clamp", "kernels/backends/reference.py",
      "    s = x.clamp(-half * spacing, (half - 1) * spacing) / spacing",
      "    s = x.clamp(-half * spacing, half * spacing) / spacing",
      ("tests/test_deepsplines_oracle.py",), "B-spline clamps at the last knot, not the one before",
      k="reference"),
    M("ref-bspline-extrap-grad-sign", "kernels/backends/reference.py",
      "        acc[:, 0] -= gl",
      "        acc[:, 0] += gl",
      ("tests/test_deepsplines_oracle.py",), "B-spline left extrapolation: wrong sign in c[0]'s gradient",
      k="reference"),
    M("ref-tv2-no-abs", "kernels/backends/reference.py",
      "return ((c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D).abs().sum()",
      "return ((c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D).sum()",
      ("tests/test_tv2.py",), "TV(2) without the absolute value"),
    M("ref-psa-softmax-sign", "kernels/backends/reference.py",
      "    a = torch.softmax(-q, dim=-1)",
      "    a = torch.softmax(q, dim=-1)",
      ("tests/test_activations.py",), "PSA: softmax of +q instead of -q", k="psa_matches_loop"),
    M("ref-psa-table-grad-b", "kernels/backends/reference.py",
      "    gb = (r * 2.0 * d / den).sum(1)",
      "    gb = (r * d / den).sum(1)",
      (KFAST,), "PSA table backward: the factor 2 of the centre gradient lost",
      k="psa_table and reference"),
    # ---------------------------------------------------------------- C kernels
    M("c-lerp-forward-frac", "kernels/csrc/lookup_cpu.c",
      "yr[i] = ST(left + fr[i] * (table[idx[i] + 1] - left));",
      "yr[i] = ST(left + fr[i] * (table[idx[i] + 1] - table[idx[i] - 1]));",
      (KFAST,), "C forward interpolates towards the wrong neighbour", k="cpu and lerp"),
    M("c-lerp-grad-x-step", "kernels/csrc/lookup_cpu.c",
      "gxr[i] = ST((tb[idx[i] + 1] - tb[idx[i]]) * inv_h * LD(gr[i]));",
      "gxr[i] = ST((tb[idx[i] + 1] - tb[idx[i]]) / inv_h * LD(gr[i]));",
      (KFAST,), "C input gradient divides by 1/h (multiplies by the step)", k="cpu and lerp"),
    M("c-lerp-grad-table-right", "kernels/csrc/lookup_cpu.c",
      "w1[i] = frac * gyi;",
      "w1[i] = ((T)1 - frac) * gyi;",
      (KFAST,), "C table gradient: right weight 1 - frac", k="cpu and lerp"),
    # the fast training path (bf16 kernels, the rewritten ResMLP layers, batched reading)
    M("c-bf16-truncate", "kernels/csrc/lookup_cpu.c",
      "return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);",
      "return (uint16_t)(v.u >> 16);",
      (KFASTPATH,), "bf16 kernels truncate instead of rounding to nearest even", k="bf16"),
    M("c-lerp-pair-sum", "kernels/csrc/lookup_cpu.c",
      "if (j) s += pc[-1];",
      "if (j) s += pc[1];",
      (KFAST,), "C table gradient: the right weights summed into the wrong grid point",
      k="cpu and lerp"),
    M("token-bn-grouping", "models/resmlp.py",
      "return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)",
      "return self.bn(x.reshape(x.shape[-1], -1).t()).reshape(x.shape)",
      (KFASTPATH, "tests/test_models.py"), "token BatchNorm groups values into the wrong channels",
      k="batchnorm or authors_fixture"),
    M("cross-patch-transposed", "models/resmlp.py",
      "h = torch.baddbmm(lin.bias.view(1, -1, 1), lin.weight.expand(u.shape[0], -1, -1), u)",
      "h = torch.baddbmm(lin.bias.view(1, -1, 1), lin.weight.t().expand(u.shape[0], -1, -1), u)",
      (KFASTPATH, "tests/test_models.py"), "token mixing with the transposed weight",
      k="cross_patch or authors_fixture"),
    M("mixed-dtype-narrowed", "models/resmlp.py",
      "dt = torch.promote_types(a.dtype, b.dtype)",
      "dt = a.dtype",
      (KFASTPATH,), "mixed-dtype ops cast to the first operand's (narrower) dtype",
      k="mixed_dtypes"),
    M("batch-flip-inverted", "data/__init__.py",
      "img = torch.where(torch.tensor(flip).view(n, 1, 1, 1), img.flip(-1), img)",
      "img = torch.where(torch.tensor(flip).view(n, 1, 1, 1), img, img.flip(-1))",
      (KFASTPATH,), "batched reading flips the images that the per-image reader keeps",
      k="batched_reading"),
    M("c-psa-den-square", "kernels/csrc/lookup_cpu.c",
      "for (int64_t k = 0; k < e; ++k) den[k] = wi[k] * wi[k] + (T)eps;",
      "for (int64_t k = 0; k < e; ++k) den[k] = wi[k] + (T)eps;",
      (KFAST,), "C PSA table forward: w instead of w^2 in the width", k="psa_table and cpu"),
    M("c-psa-grad-b", "kernels/csrc/lookup_cpu.c",
      "sb += (double)(rr * 2 * d / dk);",
      "sb += (double)(rr * d / dk);",
      (KFAST,), "C PSA table backward: factor 2 lost in the centre gradient", k="psa_table and cpu"),
    # ---------------------------------------------------------------- Triton kernels
    M("triton-segment-clamp", "kernels/backends/triton.py",
      "j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 2).to(tl.float32))",
      "j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 1).to(tl.float32))",
      (KFAST,), "Triton segment clamped to G - 1: reads past a table row", k="triton and lerp"),
    M("triton-grad-table-right", "kernels/backends/triton.py",
      "            w_right = frac * gy",
      "            w_right = (1.0 - frac) * gy",
      (KFAST,), "Triton table gradient: right weight 1 - frac", k="triton and lerp"),
    M("triton-psa-den", "kernels/backends/triton.py",
      "q = -tl.div_rn(d * d, (wk * wk + eps)[:, None])",
      "q = -tl.div_rn(d * d, (wk + eps)[:, None])",
      (KFAST,), "Triton PSA table forward: w instead of w^2", k="psa_table and triton"),
    M("triton-psa-grad-b", "kernels/backends/triton.py",
      "gb = tl.sum(r * 2.0 * d / den, axis=1)",
      "gb = tl.sum(r * d / den, axis=1)",
      (KFAST,), "Triton PSA table backward: factor 2 lost", k="psa_table and triton"),
    # ---------------------------------------------------------------- activations
    M("psa-residual-fold-sign", "activations/psa.py",
      "return table + t if residual else table",
      "return table - t if residual else table",
      ("tests/test_activations.py",), "x + LerpPSA(x) folded into the table as T - t"),
    M("bspline-init-slope", "activations/bspline.py",
      "negative_slope=0.01",
      "negative_slope=0.1",
      (KREF,), "B-spline initialised to a leaky ReLU of slope 0.1", k="default_init"),
    # ---------------------------------------------------------------- checkpoint loading
    M("ckpt-shape-check-skipped", "models/checkpoint.py",
      "        if k in own and tuple(own[k].shape) != tuple(v.shape):",
      "        if False and k in own and tuple(own[k].shape) != tuple(v.shape):",
      ("tests/test_checkpoint_checks.py",), "per-tensor shape check skipped", k="every_tensor_shape"),
    M("ckpt-grid-range-loose", "models/registry.py",
      "if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=0):",
      "if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=1.0):",
      ("tests/test_checkpoint_checks.py",), "grid buffers compared with a 100 % tolerance",
      k="grid_range"),
    M("ckpt-float-settings-loose", "models/checkpoint.py",
      "return not math.isclose(a, b, rel_tol=1e-5)",
      "return not math.isclose(a, b, rel_tol=1.0)",
      ("tests/test_checkpoint_checks.py",), "float settings (grid and spline range) compared "
      "with a 100 % tolerance", k="grid_range"),
    # ---------------------------------------------------------------- resume
    M("resume-torch-rng-not-restored", "training/session.py",
      '    torch.set_rng_state(state["torch"])',
      '    pass  # torch.set_rng_state(state["torch"])',
      ("tests/test_resume.py",), "resume does not restore torch's RNG", k="bit_identically"),
    M("kd-loss-alpha-swapped", "training/loops.py",
      "    return alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(student_logits, labels)",
      "    return (1.0 - alpha) * T * T * kd + alpha * F.cross_entropy(student_logits, labels)",
      ("tests/test_training_units.py",), "KD loss with alpha on the wrong term", k="distillation"),
    M("kt-prefix-eval-mode", "training/loops.py",
      "epochs=epochs, bspline_lambda=bspline_lambda, modes=student.train)",
      "epochs=epochs, bspline_lambda=bspline_lambda,\n"
      "                        modes=lambda b=b: (student.eval(), student.layers[b].train()))",
      ("tests/test_recipe_conformance.py",), "authors' KT runs the frozen prefix in eval mode "
      "(fixed BatchNorm statistics)", k="authors"),
    M("kt-optimiser-per-block", "training/loops.py",
      "        freeze_for_kt(student, b)\n        net = loop.wrap(_UpToBlock(student, b))\n",
      "        freeze_for_kt(student, b)\n        net = loop.wrap(_UpToBlock(student, b))\n"
      "        opt = Optimisers([student.layers[b]], lr, wd, spline_lr)\n",
      ("tests/test_recipe_conformance.py",), "authors' KT builds a fresh optimiser per block "
      "(no TV(2) steps on later blocks' splines)", k="authors"),
    M("kd-leaves-kt-frozen", "training/loops.py",
      "    unfreeze(student)\n    if opt is None:",
      "    if opt is None:",
      ("tests/test_training_units.py",), "knowledge_distillation trains only what KT left "
      "unfrozen (the last block)", k="unfreezes"),
    M("ddp-nonfinite-own-rank", "training/nonfinite.py",
      "rank = next(r for r, f in enumerate(found) if f[0])",
      "rank = dist.get_rank()",
      ("tests/test_training_nonfinite_ddp.py",), "torchrun non-finite stop: each process "
      "names itself, not the first that failed (the processes' lines differ)"),
    # ---------------------------------------------------------------- QAT (LSQ)
    M("lsq-step-no-gradient", "quant/qresmlp.py",
      "s_eff = s_out * torch.exp2(-sh.float()) / s_in * (s_w / s_w.detach())",
      "s_eff = s_out * torch.exp2(-sh.float()) / s_in",
      ("tests/test_quant.py",), "LSQ: the weight step gets no gradient (never learned)",
      k="lsq"),
    # ---------------------------------------------------------------- ONNX export
    M("onnx-index-clamp", "deploy/onnx_export.py",
      'g.const(base + ".last_segment", float(points - 2))',
      'g.const(base + ".last_segment", float(points - 1))',
      ("tests/test_onnx_export.py",), "ONNX LERP index clamped to G - 1: the right gather "
      "reads the next feature's row", k="lerp_nodes"),
    M("onnx-table-no-residual", "deploy/onnx_export.py",
      "table = psa.table(residual=isinstance(mod, ResidualLerpPSA))",
      "table = psa.table()",
      ("tests/test_onnx_export.py",), "ONNX: the residual x not folded into the LERP-PSA "
      "table", k="small_models"),
    # ---------------------------------------------------------------- 8-bit LERP and RTL
    M("lerp8-no-rounding", "fpga/lerp8.py",
      "y = y0 + (((y1 - y0) * lo + (1 << (L - 1))) >> L)",
      "y = y0 + (((y1 - y0) * lo) >> L)",
      ("tests/test_fpga.py",), "8-bit LERP truncates instead of rounding half up",
      k="lerp8_matches_scalar"),
    M("rtl-rounding-line", "fpga/rtl/lerp_unit.v",
      "wire signed [L+9:0] rounded = (s3_prod + half) >>> L;",
      "wire signed [L+9:0] rounded = s3_prod >>> L;",
      ("tests/test_fpga.py",), "RTL: the rounding constant dropped (truncation)",
      k="rtl_exhaustive", strict=True),
    M("rtl-address-line", "fpga/rtl/lerp_unit.v",
      "rd_addr_b <= in_base + {{(AW-M){1'b0}}, hi} + {{(AW-1){1'b0}}, 1'b1};",
      "rd_addr_b <= in_base + {{(AW-M){1'b0}}, hi};",
      ("tests/test_fpga.py",), "RTL: second read address is hi, not hi + 1", k="rtl_exhaustive", strict=True),
    # ---------------------------------------------------------------- streaming INT8 pipeline
    M("rtl-dot-side-one-short", "fpga/rtl/dot_tree.v",
      "pipe_delay #(.W(SW), .D(LAT), .RST(0)) ds",
      "pipe_delay #(.W(SW), .D(LAT - 1), .RST(0)) ds",
      ("tests/test_rtl_stages.py",), "dot product: the side band (bias, shift, markers) "
      "delayed one clock less than the sum (a pipeline register missing)", k="every_stage",
      strict=True),
    M("rtl-token-mixer-last-per-row", "fpga/rtl/token_mixer.v",
      "clast1 <= clast;",
      "clast1 <= clastc;",
      ("tests/test_rtl_stages.py",), "token mixer: out_last on the last channel of every "
      "token row instead of the image's last element", k="every_stage", strict=True),
    M("rtl-fifo-one-credit-too-many", "fpga/rtl/credit_fifo.v",
      "credits <= 1 << AW;",
      "credits <= (1 << AW) + 1;",
      ("tests/test_rtl_resmlp.py",), "stage output FIFO: one credit more than its depth (a "
      "write into a full FIFO once the output back-pressure fills it)", k="full_size",
      strict=True),
    # ---------------------------------------------------------------- fixed-SIMD engine
    M("simd-requant-bias-swapped", "fpga/rtl/simd_top.v",
      ".in_b(is_ds ? b_row : bw[g*8 +: 8])",
      ".in_b(is_ds ? bw[g*8 +: 8] : b_row)",
      ("tests/test_rtl_simd.py",), "fixed-SIMD requantisation: the token Linear takes the "
      "per-lane bias, the channel Linears the per-row one (swapped)", k="small_engine",
      strict=True),
    M("simd-reader-segment-off-by-one", "fpga/rtl/mem_reader.v",
      "ptr          <= next_base;",
      "ptr          <= next_base + 1'b1;",
      ("tests/test_rtl_simd.py",), "fixed-SIMD memory reader: a parameter segment read from "
      "one beat past its base", k="small_engine", strict=True),
    # ---------------------------------------------------------------- INT8 primitives
    M("int-rshift-truncates", "fpga/int_ops.py",
      "    return (v + half) >> s",
      "    return v >> s",
      ("tests/test_int_ops.py",), "rshift without the rounding half", k="rshift"),
    M("int-clip8-symmetric", "fpga/int_ops.py",
      "INT8_MIN, INT8_MAX = -128, 127",
      "INT8_MIN, INT8_MAX = -127, 127",
      ("tests/test_int_ops.py",), "clip8 to [-127, 127]", k="clip8"),
    M("int-add8-wraps", "fpga/int_ops.py",
      'return np.clip(_as_int(a, "a") + _as_int(b, "b"), INT8_MIN, INT8_MAX).astype(np.int8)',
      'return (_as_int(a, "a") + _as_int(b, "b")).astype(np.int8)',
      ("tests/test_int_ops.py",), "add8 wraps around instead of saturating", k="add8"),
]


def tracked_files(root):
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def make_scratch(root, dest):
    for rel in tracked_files(root):
        src = os.path.join(root, rel)
        if not os.path.isfile(src) or rel.startswith("output/"):
            continue    # deleted in the work tree; shipped checkpoints (no mutation needs them)
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


def check_applies(root, muts):
    problems = []
    for m in muts:
        try:
            with open(os.path.join(root, m.path)) as f:
                n = f.read().count(m.old)
        except OSError as exc:
            problems.append(f"{m.name}: cannot read {m.path} ({exc.strerror})")
            continue
        if n != 1:
            problems.append(f"{m.name}: the text to replace occurs {n} times in {m.path} "
                            "(the code moved: update MUTATIONS in scripts/mutation_check.py)")
        for t in m.tests:
            if not os.path.isfile(os.path.join(root, t.split("::")[0])):
                problems.append(f"{m.name}: test file {t.split('::')[0]} does not exist")
    return problems


def run_mutant(scratch, m, env, timeout):
    path = os.path.join(scratch, m.path)
    with open(path) as f:
        original = f.read()
    try:
        with open(path, "w") as f:
            f.write(original.replace(m.old, m.new, 1))
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests]
        if m.k:
            cmd += ["-k", m.k]
        if m.strict:
            env = dict(env, REPRO_STRICT_ORACLES="1")
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:
            rc, out = -1, f"timed out after {timeout} s"
        secs = time.time() - t0
    finally:
        with open(path, "w") as f:
            f.write(original)
    killer = ""
    if rc == 1:
        failed = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("FAILED ")]
        killer = failed[0].split(" - ")[0] if failed else "(a failing test)"
    return rc, killer, secs, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="print the mutations and exit")
    p.add_argument("--check", action="store_true",
                   help="only check that every mutation applies to the current tree (no tests run)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    p.add_argument("--keep", action="store_true", help="keep the scratch copy")
    p.add_argument("--timeout", type=int, default=900, help="seconds per mutant (default 900)")
    p.add_argument("--verbose", action="store_true", help="print pytest's output of survivors")
    p.add_argument("--jobs", type=int, default=2, help="mutants run at once, each in its own copy (2)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the run of the unmutated tests (only when they are known to pass)")
    args = p.parse_args(argv)
    muts = MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            print(f"mutation_check.py: error: unknown mutation(s) {', '.join(sorted(unknown))}; "
                  "see --list", file=sys.stderr)
            return 2
        muts = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in muts:
            print(f"{m.name:28s} {m.path:32s} {m.what}  [{', '.join(m.tests)}]")
        return 0
    problems = check_applies(ROOT, muts)
    if problems:
        for line in problems:
            print(f"mutation_check.py: error: {line}", file=sys.stderr)
        print(json.dumps({"mutants": len(muts), "killed": 0, "not_applicable": len(problems)}))
        return 2
    if args.check:
        print(f"all {len(muts)} mutations apply (each text to replace occurs exactly once; every "
              "test file exists)")
        return 0

    t_start = time.time()
    jobs = max(1, min(args.jobs, len(muts)))
    scratches = [tempfile.mkdtemp(prefix="mutation_check_") for _ in range(jobs)]
    scratches_extra = []
    rows, killed = {}, 0
    lock = threading.Lock()
    try:
        for scratch in scratches:
            make_scratch(ROOT, scratch)
        envs = [dict(os.environ, TRITON_INTERPRET="1", PYTHONDONTWRITEBYTECODE="1",
                     LERP_CPU_CACHE=os.path.join(scratch, ".cache", "lerp_cpu")) for scratch in scratches]
        for env in envs:
            env.pop("REPRO_STRICT_ORACLES", None)
        baseline = {}
        base_thread = None
        if not args.no_baseline:
            # The unmutated selections must pass, or no mutant result means anything. Run
            # alongside the mutants, in a copy of its own: every file, -k the union of the
            # selections (a module's name selects all of it when a mutation has no -k).
            base_dir = tempfile.mkdtemp(prefix="mutation_check_base_")
            scratches_extra.append(base_dir)
            make_scratch(ROOT, base_dir)
            files = sorted({t for m in muts for t in m.tests})
            keys = sorted({f"({m.k})" if m.k else os.path.splitext(os.path.basename(t))[0]
                           for m in muts for t in m.tests})
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files,
                   "-k", " or ".join(keys)]
            benv = dict(envs[0], LERP_CPU_CACHE=os.path.join(base_dir, ".cache", "lerp_cpu"))

            def run_base():
                t0 = time.time()
                proc = subprocess.run(cmd, cwd=base_dir, env=benv, capture_output=True, text=True)
                baseline.update(rc=proc.returncode, out=proc.stdout + proc.stderr,
                                secs=time.time() - t0)
                print(f"baseline (unmutated): pytest exit {proc.returncode} "
                      f"({time.time() - t0:.0f} s)", file=sys.stderr)

            base_thread = threading.Thread(target=run_base)
            base_thread.start()
        free = list(range(jobs))
        done = [0]

        def one(m):
            with lock:
                k = free.pop()
            try:
                rc, killer, secs, out = run_mutant(scratches[k], m, envs[k], args.timeout)
            finally:
                with lock:
                    free.append(k)
            ok = rc == 1
            status = killer if ok else ("SURVIVED" if rc == 0 else f"ERROR (pytest exit {rc})")
            with lock:
                rows[m.name] = (m.name, m.path, status, secs, ok)
                done[0] += 1
                print(f"[{done[0]}/{len(muts)}] {m.name}: {status} ({secs:.0f} s)", file=sys.stderr)
                if not ok and args.verbose:
                    print(out[-3000:], file=sys.stderr)

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, muts))
        if base_thread is not None:
            base_thread.join()
    finally:
        for scratch in scratches + scratches_extra:
            if args.keep:
                print(f"scratch copy kept: {scratch}", file=sys.stderr)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    rows = [rows[m.name] for m in muts if m.name in rows]
    killed = sum(r[4] for r in rows)
    total = time.time() - t_start
    w1 = max(len("mutation"), *(len(r[0]) for r in rows))
    w2 = max(len("file"), *(len(r[1]) for r in rows))
    print(f"| {'mutation':{w1}s} | {'file':{w2}s} | killed by |")
    print(f"|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|---|")
    for name, path, status, _, _ in rows:
        print(f"| {name:{w1}s} | {path:{w2}s} | {status} |")
    if baseline and baseline["rc"] != 0:
        failed = [line for line in baseline["out"].splitlines() if line.startswith("FAILED ")]
        print("\n".join(failed) or baseline["out"][-3000:], file=sys.stderr)
        print("mutation_check.py: error: the unmutated tests do not all pass (above); a mutant "
              "killed only by those tests means nothing", file=sys.stderr)
    print(json.dumps({"mutants": len(rows), "killed": killed, "seconds": round(total),
                      "baseline_ok": (baseline.get("rc") == 0) if baseline else None}))
    if baseline and baseline["rc"] != 0:
        return 2
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
