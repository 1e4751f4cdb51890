#!/usr/bin/env python
"""Mutation check: do the tests catch small, realistic bugs?

Each mutation below names a file, the unit of that file that holds the code (a Python
function, method, class or module-level assignment; a C function or macro; a Verilog module),
a pattern inside the unit (plain text, whitespace-insensitive, which must match exactly once
there), the replacement, and the tests that must catch it: code moving within the file, or
other code changing, leaves a mutation applicable. The script copies the checkout (tracked
and untracked-but-not-ignored files) to a scratch folder once, then for each mutation: writes
the mutated file, runs its tests there with pytest (-x, stop at the first failure), and
restores the file. A mutant is killed when pytest reports a failing test (exit status 1).

  python scripts/mutation_check.py              # every mutation (about 20-40 min on 2 cores)
  python scripts/mutation_check.py --list       # the mutations, nothing run
  python scripts/mutation_check.py --check      # every mutation still applies? (seconds; in CI)
  python scripts/mutation_check.py --only ref-lerp-frac-clamped c-lerp-grad-x-step
  nice -n 10 python scripts/mutation_check.py --keep   # keep the scratch copy for a look

Prints a table (mutation, file, killed by) and, as its last line, one JSON object
{"mutants": N, "killed": K, "seconds": S}. Exits 1 when a mutant survives, 2 when a mutation
no longer applies (its unit is gone or its pattern matches 0 or 2+ times in it: one line
each, naming the mutation, the unit and the file; update the list below). The mutants
themselves are not run in CI (tests/test_mutation_check.py runs only --check): run this after
changing the kernels, the activations, checkpoint loading, training, QAT, the ONNX export or
the RTL.
"""
from __future__ import annotations

import argparse
import ast
import bisect
import json
import os
import re
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
    unit: str          # the function, method, macro or module that holds the code (see below)
    old: str           # pattern: must match exactly once inside the unit (whitespace-insensitive)
    new: str
    tests: tuple       # test files (or file::test node ids) that must catch it
    what: str          # the bug, in words
    k: str = ""        # pytest -k expression selecting the tests of those files that matter
    strict: bool = False  # run with REPRO_STRICT_ORACLES=1: a missing tool (Verilator) fails

    def __post_init__(self):
        if self.old.strip() == self.new.strip():
            raise ValueError(f"{self.name}: old and new are the same")
        if not self.old.strip():
            raise ValueError(f"{self.name}: empty pattern")


M = Mutation
KREF, KFAST = "tests/test_kernels_reference.py", "tests/test_kernels_fast.py"
KFASTPATH = "tests/test_fast_path.py"
MUTATIONS = [
    # ---------------------------------------------------------------- reference kernels
    M("ref-lerp-frac-clamped", "kernels/backends/reference.py", "lerp_index",
      "return j.long(), u - j",
      "return j.long(), (u - j).clamp(0, 1)",
      (KREF,), "LERP clamps the fraction: no extrapolation past the grid", k="lerp"),
    M("ref-lerp-grad-x-step", "kernels/backends/reference.py", "lerp_backward",
      "gx = ((t[idx + 1] - t[idx]) * grid_scale(G, grid_range) * g).to(x.dtype)",
      "gx = ((t[idx + 1] - t[idx]) / grid_scale(G, grid_range) * g).to(x.dtype)",
      (KREF,), "LERP input gradient divides by 1/h (multiplies by the step)", k="lerp"),
    M("ref-scatter-weights-swapped", "kernels/backends/reference.py", "_scatter_pair",
      "acc.index_add_(0, flat, ((1.0 - frac) * g).reshape(-1))",
      "acc.index_add_(0, flat, (frac * g).reshape(-1))",
      (KREF,), "table/coefficient gradient: left weight frac instead of 1 - frac", k="lerp"),
    M("ref-bspline-top-clamp", "kernels/backends/reference.py", "bspline_index",
      "    s = x.clamp(-half * spacing, (half - 1) * spacing) / spacing",
      "    s = x.clamp(-half * spacing, half * spacing) / spacing",
      ("tests/test_deepsplines_oracle.py",), "B-spline clamps at the last knot, not the one before",
      k="reference"),
    M("ref-bspline-extrap-grad-sign", "kernels/backends/reference.py", "bspline_backward",
      "        acc[:, 0] -= gl",
      "        acc[:, 0] += gl",
      ("tests/test_deepsplines_oracle.py",), "B-spline left extrapolation: wrong sign in c[0]'s gradient",
      k="reference"),
    M("ref-tv2-no-abs", "kernels/backends/reference.py", "tv2",
      "return ((c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D).abs().sum()",
      "return ((c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D).sum()",
      ("tests/test_tv2.py",), "TV(2) without the absolute value"),
    M("ref-psa-softmax-sign", "kernels/backends/reference.py", "psa_function",
      "    a = torch.softmax(-q, dim=-1)",
      "    a = torch.softmax(q, dim=-1)",
      ("tests/test_activations.py",), "PSA: softmax of +q instead of -q", k="psa_matches_loop"),
    M("ref-psa-table-grad-b", "kernels/backends/reference.py", "psa_table_backward",
      "    gb = (r * 2.0 * d / den).sum(1)",
      "    gb = (r * d / den).sum(1)",
      (KFAST,), "PSA table backward: the factor 2 of the centre gradient lost",
      k="psa_table and reference"),
    # ---------------------------------------------------------------- C kernels
    M("c-lerp-forward-frac", "kernels/csrc/lookup_cpu.c", "DEFINE_LERP",
      "yr[i] = ST(left + fr[i] * (table[idx[i] + 1] - left));",
      "yr[i] = ST(left + fr[i] * (table[idx[i] + 1] - table[idx[i] - 1]));",
      (KFAST,), "C forward interpolates towards the wrong neighbour", k="cpu and lerp"),
    M("c-lerp-grad-x-step", "kernels/csrc/lookup_cpu.c", "DEFINE_LERP",
      "gxr[i] = ST((tb[idx[i] + 1] - tb[idx[i]]) * inv_h * LD(gr[i]));",
      "gxr[i] = ST((tb[idx[i] + 1] - tb[idx[i]]) / inv_h * LD(gr[i]));",
      (KFAST,), "C input gradient divides by 1/h (multiplies by the step)", k="cpu and lerp"),
    M("c-lerp-grad-table-right", "kernels/csrc/lookup_cpu.c", "DEFINE_LERP",
      "w1[i] = frac * gyi;",
      "w1[i] = ((T)1 - frac) * gyi;",
      (KFAST,), "C table gradient: right weight 1 - frac", k="cpu and lerp"),
    # the fast training path (bf16 kernels, the rewritten ResMLP layers, batched reading)
    M("c-bf16-truncate", "kernels/csrc/lookup_cpu.c", "bf16_store",
      "return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);",
      "return (uint16_t)(v.u >> 16);",
      (KFASTPATH,), "bf16 kernels truncate instead of rounding to nearest even", k="bf16"),
    M("c-lerp-pair-sum", "kernels/csrc/lookup_cpu.c", "DEFINE_LERP",
      "if (j) s += pc[-1];",
      "if (j) s += pc[1];",
      (KFAST,), "C table gradient: the right weights summed into the wrong grid point",
      k="cpu and lerp"),
    M("token-bn-grouping", "models/resmlp.py", "TokenBatchNorm.forward",
      "return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)",
      "return self.bn(x.reshape(x.shape[-1], -1).t()).reshape(x.shape)",
      (KFASTPATH, "tests/test_models.py"), "token BatchNorm groups values into the wrong channels",
      k="batchnorm or authors_fixture"),
    M("cross-patch-transposed", "models/resmlp.py", "CrossPatch.forward",
      "h = torch.baddbmm(lin.bias.view(1, -1, 1), lin.weight.expand(u.shape[0], -1, -1), u)",
      "h = torch.baddbmm(lin.bias.view(1, -1, 1), lin.weight.t().expand(u.shape[0], -1, -1), u)",
      (KFASTPATH, "tests/test_models.py"), "token mixing with the transposed weight",
      k="cross_patch or authors_fixture"),
    M("mixed-dtype-narrowed", "models/resmlp.py", "common_dtype",
      "dt = torch.promote_types(a.dtype, b.dtype)",
      "dt = a.dtype",
      (KFASTPATH,), "mixed-dtype ops cast to the first operand's (narrower) dtype",
      k="mixed_dtypes"),
    M("batch-flip-inverted", "data/__init__.py", "TensorImages.batch",
      "img = torch.where(torch.tensor(flip).view(n, 1, 1, 1), img.flip(-1), img)",
      "img = torch.where(torch.tensor(flip).view(n, 1, 1, 1), img, img.flip(-1))",
      (KFASTPATH,), "batched reading flips the images that the per-image reader keeps",
      k="batched_reading or written_out"),
    M("c-psa-den-square", "kernels/csrc/lookup_cpu.c", "DEFINE_PSA",
      "for (int64_t k = 0; k < e; ++k) den[k] = wi[k] * wi[k] + (T)eps;",
      "for (int64_t k = 0; k < e; ++k) den[k] = wi[k] + (T)eps;",
      (KFAST,), "C PSA table forward: w instead of w^2 in the width", k="psa_table and cpu"),
    M("c-psa-grad-b", "kernels/csrc/lookup_cpu.c", "DEFINE_PSA",
      "sb += (double)(rr * 2 * d / dk);",
      "sb += (double)(rr * d / dk);",
      (KFAST,), "C PSA table backward: factor 2 lost in the centre gradient", k="psa_table and cpu"),
    # ---------------------------------------------------------------- Triton kernels
    M("triton-segment-clamp", "kernels/backends/triton.py", "_segment",
      "j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 2).to(tl.float32))",
      "j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 1).to(tl.float32))",
      (KFAST,), "Triton segment clamped to G - 1: reads past a table row", k="triton and lerp"),
    M("triton-grad-table-right", "kernels/backends/triton.py", "_lerp_bwd_kernel",
      "            w_right = frac * gy",
      "            w_right = (1.0 - frac) * gy",
      (KFAST,), "Triton table gradient: right weight 1 - frac", k="triton and lerp"),
    M("triton-psa-den", "kernels/backends/triton.py", "_softmax_stats",
      "q = -tl.div_rn(d * d, (wk * wk + eps)[:, None])",
      "q = -tl.div_rn(d * d, (wk + eps)[:, None])",
      (KFAST,), "Triton PSA table forward: w instead of w^2", k="psa_table and triton"),
    M("triton-psa-grad-b", "kernels/backends/triton.py", "_psa_table_bwd_kernel",
      "gb = tl.sum(r * 2.0 * d / den, axis=1)",
      "gb = tl.sum(r * d / den, axis=1)",
      (KFAST,), "Triton PSA table backward: factor 2 lost", k="psa_table and triton"),
    # ---------------------------------------------------------------- activations
    M("psa-residual-fold-sign", "activations/psa.py", "LerpPSA.compute_table",
      "return table + t if residual else table",
      "return table - t if residual else table",
      ("tests/test_activations.py",), "x + LerpPSA(x) folded into the table as T - t"),
    M("bspline-init-slope", "activations/bspline.py", "BSpline.reset_parameters",
      "negative_slope=0.01",
      "negative_slope=0.1",
      (KREF,), "B-spline initialised to a leaky ReLU of slope 0.1", k="default_init"),
    # ---------------------------------------------------------------- checkpoint loading
    M("ckpt-shape-check-skipped", "models/checkpoint.py", "load_checkpoint",
      "        if k in own and tuple(own[k].shape) != tuple(v.shape):",
      "        if False and k in own and tuple(own[k].shape) != tuple(v.shape):",
      ("tests/test_checkpoint_checks.py",), "per-tensor shape check skipped", k="every_tensor_shape"),
    M("ckpt-grid-range-loose", "models/registry.py", "_psa_load",
      "if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=0):",
      "if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=1.0):",
      ("tests/test_checkpoint_checks.py",), "grid buffers compared with a 100 % tolerance",
      k="grid_range"),
    M("ckpt-float-settings-loose", "models/checkpoint.py", "_compare.differs",
      "return not math.isclose(a, b, rel_tol=1e-5)",
      "return not math.isclose(a, b, rel_tol=1.0)",
      ("tests/test_checkpoint_checks.py",), "float settings (grid and spline range) compared "
      "with a 100 % tolerance", k="grid_range"),
    M("ckpt-compile-prefix-kept", "models/checkpoint.py", "WRAPPER_PREFIXES",
      '("module.", "_orig_mod.")',
      '("module.",)',
      ("tests/test_checkpoint_checks.py",), "foreign checkpoints: torch.compile's _orig_mod. "
      "prefix not taken off the keys", k="unwrapped"),
    # ---------------------------------------------------------------- kernel choice
    M("impl-explicit-falls-back", "kernels/registry.py", "resolve",
      "if ok:\n return b.name\n instead =",
      "if ok:\n        return b.name\n    if b.fallback:\n        _warn(b, why)\n"
      "        return resolve(op, b.fallback, device_type)\n    instead =",
      (KFAST,), "--impl cpu named explicitly that cannot run falls back to the reference path "
      "(with a warning) instead of failing", k="falls_back_with_warning"),
    # ---------------------------------------------------------------- resume
    M("resume-torch-rng-not-restored", "training/session.py", "restore_rng",
      '    torch.set_rng_state(state["torch"])',
      '    pass  # torch.set_rng_state(state["torch"])',
      ("tests/test_resume.py",), "resume does not restore torch's RNG", k="bit_identically"),
    M("resume-fallback-not-logged", "training/session.py", "Session.load",
      'if self.ckpt.fallback:\n self.log.json(event="resume_fallback",',
      'if False:\n                self.log.json(event="resume_fallback",',
      ("tests/test_resume.py",), "resume from state.prev.pt leaves no resume_fallback record "
      "in the JSON log", k="truncated_state"),
    M("kd-loss-alpha-swapped", "training/loops.py", "distillation_loss",
      "    return alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(student_logits, labels)",
      "    return (1.0 - alpha) * T * T * kd + alpha * F.cross_entropy(student_logits, labels)",
      ("tests/test_training_units.py",), "KD loss with alpha on the wrong term", k="distillation"),
    M("kt-prefix-eval-mode", "training/loops.py", "knowledge_transfer",
      "epochs=epochs, bspline_lambda=bspline_lambda, modes=student.train)",
      "epochs=epochs, bspline_lambda=bspline_lambda,\n"
      "                        modes=lambda b=b: (student.eval(), student.layers[b].train()))",
      ("tests/test_recipe_conformance.py",), "authors' KT runs the frozen prefix in eval mode "
      "(fixed BatchNorm statistics)", k="authors"),
    M("kt-optimiser-per-block", "training/loops.py", "knowledge_transfer",
      "        freeze_for_kt(student, b)\n        net = loop.wrap(_UpToBlock(student, b))\n",
      "        freeze_for_kt(student, b)\n        net = loop.wrap(_UpToBlock(student, b))\n"
      "        opt = Optimisers([student.layers[b]], lr, wd, spline_lr)\n",
      ("tests/test_recipe_conformance.py",), "authors' KT builds a fresh optimiser per block "
      "(no TV(2) steps on later blocks' splines)", k="authors"),
    M("kd-leaves-kt-frozen", "training/loops.py", "knowledge_distillation",
      "    unfreeze(student)\n    if opt is None:",
      "    if opt is None:",
      ("tests/test_training_units.py",), "knowledge_distillation trains only what KT left "
      "unfrozen (the last block)", k="unfreezes"),
    M("ddp-nonfinite-own-rank", "training/nonfinite.py", "stop_every_process",
      "rank = next(r for r, f in enumerate(found) if f[0])",
      "rank = dist.get_rank()",
      ("tests/test_training_nonfinite_ddp.py",), "torchrun non-finite stop: each process "
      "names itself, not the first that failed (the processes' lines differ)"),
    # ---------------------------------------------------------------- QAT (LSQ)
    M("lsq-step-no-gradient", "quant/qresmlp.py", "QWeighted.codes",
      "s_eff = s_out * torch.exp2(-sh.float()) / s_in * (s_w / s_w.detach())",
      "s_eff = s_out * torch.exp2(-sh.float()) / s_in",
      ("tests/test_quant.py",), "LSQ: the weight step gets no gradient (never learned)",
      k="lsq"),
    # ---------------------------------------------------------------- ONNX export
    M("onnx-index-clamp", "deploy/onnx_export.py", "lerp_nodes",
      'g.const(base + ".last_segment", float(points - 2))',
      'g.const(base + ".last_segment", float(points - 1))',
      ("tests/test_onnx_export.py",), "ONNX LERP index clamped to G - 1: the right gather "
      "reads the next feature's row", k="lerp_nodes"),
    M("onnx-table-no-residual", "deploy/onnx_export.py", "lerp_table_of",
      "table = psa.compute_table(residual=isinstance(mod, ResidualLerpPSA))",
      "table = psa.compute_table()",
      ("tests/test_onnx_export.py",), "ONNX: the residual x not folded into the LERP-PSA "
      "table", k="small_models"),
    # ---------------------------------------------------------------- 8-bit LERP and RTL
    M("lerp8-no-rounding", "fpga/lerp8.py", "lerp8",
      "y = y0 + (((y1 - y0) * lo + (1 << (L - 1))) >> L)",
      "y = y0 + (((y1 - y0) * lo) >> L)",
      ("tests/test_fpga.py",), "8-bit LERP truncates instead of rounding half up",
      k="lerp8_matches_scalar"),
    M("rtl-rounding-line", "fpga/rtl/lerp_unit.v", "lerp_unit",
      "wire signed [L+9:0] rounded = (s3_prod + half) >>> L;",
      "wire signed [L+9:0] rounded = s3_prod >>> L;",
      ("tests/test_fpga.py",), "RTL: the rounding constant dropped (truncation)",
      k="rtl_exhaustive", strict=True),
    M("rtl-address-line", "fpga/rtl/lerp_unit.v", "lerp_unit",
      "rd_addr_b <= in_base + {{(AW-M){1'b0}}, hi} + {{(AW-1){1'b0}}, 1'b1};",
      "rd_addr_b <= in_base + {{(AW-M){1'b0}}, hi};",
      ("tests/test_fpga.py",), "RTL: second read address is hi, not hi + 1", k="rtl_exhaustive", strict=True),
    # ---------------------------------------------------------------- streaming INT8 pipeline
    M("rtl-dot-side-one-short", "fpga/rtl/dot_tree.v", "dot_tree",
      "pipe_delay #(.W(SW), .D(LAT), .RST(0)) ds",
      "pipe_delay #(.W(SW), .D(LAT - 1), .RST(0)) ds",
      ("tests/test_rtl_stages.py",), "dot product: the side band (bias, shift, markers) "
      "delayed one clock less than the sum (a pipeline register missing)", k="every_stage",
      strict=True),
    M("rtl-token-mixer-last-per-row", "fpga/rtl/token_mixer.v", "token_mixer",
      "clast0 <= clast;",
      "clast0 <= clastc;",
      ("tests/test_rtl_stages.py",), "token mixer: out_last on the last channel of every "
      "token row instead of the image's last element", k="every_stage", strict=True),
    M("rtl-fifo-one-credit-too-many", "fpga/rtl/credit_fifo.v", "credit_fifo",
      "credits <= 1 << AW;",
      "credits <= (1 << AW) + 1;",
      ("tests/test_rtl_resmlp.py",), "stage output FIFO: one credit more than its depth (a "
      "write into a full FIFO once the output back-pressure fills it)", k="full_size",
      strict=True),
    # ---------------------------------------------------------------- fixed-SIMD engine
    M("simd-requant-bias-swapped", "fpga/rtl/simd_top.v", "simd_top",
      ".in_b(is_ds ? b_row : bw[g*8 +: 8])",
      ".in_b(is_ds ? bw[g*8 +: 8] : b_row)",
      ("tests/test_rtl_simd.py",), "fixed-SIMD requantisation: the token Linear takes the "
      "per-lane bias, the channel Linears the per-row one (swapped)", k="small_engine",
      strict=True),
    M("simd-reader-base-off-by-one", "fpga/rtl/mem_reader.v", "mem_reader",
      "ptr  <= base;",
      "ptr  <= base + 1'b1;",
      ("tests/test_rtl_simd.py",), "fixed-SIMD memory reader: a stream read from one beat past "
      "its base", k="small_engine", strict=True),
    M("simd-burst-crosses-4k", "fpga/rtl/mem_reader.v", "mem_reader",
      "wire [NW-1:0] to_page = PAGE - {{(NW-PGW){1'b0}}, ptr[PGW-1:0]};",
      "wire [NW-1:0] to_page = (PAGE << 1) - {{(NW-PGW){1'b0}}, ptr[PGW-1:0]};",
      ("tests/test_rtl_simd.py",), "fixed-SIMD memory reader: a burst cut at the 8 KB boundary "
      "instead of the 4 KB one (an AXI4 burst across a 4 KB boundary)", k="4k", strict=True),
    M("axil-arready-combinational", "fpga/rtl/axil_regs.v", "axil_regs",
      "assign s_axil_arready = !s_axil_rvalid;",
      "assign s_axil_arready = !s_axil_rvalid || s_axil_rready;",
      ("tests/test_rtl_simd.py",), "AXI4-Lite: ARREADY follows RREADY combinationally (a "
      "path from an input port to an output port)", k="combinational", strict=True),
    M("axi-slverr-ignored", "fpga/rtl/axi_rd_master.v", "axi_rd_master",
      "if (m_axi_rresp != 2'b00) err_resp <= 1'b1;",
      "if (m_axi_rresp == 2'b11) err_resp <= 1'b1;",
      ("tests/test_rtl_simd.py",), "AXI4 read master: only DECERR sets the error bit, a SLVERR "
      "response goes unreported", k="slverr", strict=True),
    # ---------------------------------------------------------------- INT8 primitives
    M("int-rshift-truncates", "fpga/int_ops.py", "_rshift64",
      "    return (v + half) >> s",
      "    return v >> s",
      ("tests/test_int_ops.py",), "rshift without the rounding half", k="rshift"),
    M("int-clip8-symmetric", "fpga/int_ops.py", "INT8_MIN",
      "INT8_MIN, INT8_MAX = -128, 127",
      "INT8_MIN, INT8_MAX = -127, 127",
      ("tests/test_int_ops.py",), "clip8 to [-127, 127]", k="clip8"),
    M("int-add8-wraps", "fpga/int_ops.py", "add8",
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


# ---------------------------------------------------------------- units and patterns
# A mutation names its unit, the stretch of the file that holds the code, and a pattern inside
# it: code moving elsewhere in the file, or any other code changing, leaves it applicable.
#   .py                 a function, method or class by its qualified name ("LerpPSA.compute_table",
#                       "_compare.differs" for a function inside a function), from its first
#                       decorator to its last line; or a module- or class-level assignment by a
#                       name it assigns ("INT8_MIN")
#   .c .h .cpp .cc      a macro by its #define line ("DEFINE_LERP", to the end of its
#                       backslash-continued lines), or a function by its name, from the line of
#                       its name to its closing brace
#   .v .sv              a module, from "module NAME" to its "endmodule"
# The pattern (old) is plain text, not a regular expression; it is whitespace-insensitive: each
# run of whitespace in it matches any run of whitespace (so re-indenting or re-wrapping the code
# keeps it), its leading and trailing whitespace are ignored. It must match exactly once inside
# the unit; the matched text is replaced by new (its leading and trailing whitespace dropped;
# a line break inside new is written as it stands).


class NotApplicable(Exception):
    """A mutation does not apply to the file's text (one line: why)."""


_C_MASK = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)
_V_MASK = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"", re.S)   # 1'b0 is no literal


def _masked(text, regex):
    """text with comments and string literals blanked (same length, line breaks kept)."""
    return regex.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _line_offsets(text):
    offs = [0]
    for line in text.splitlines(keepends=True):
        offs.append(offs[-1] + len(line))
    return offs


def _python_units(text, path):
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise NotApplicable(f"cannot parse {path} (line {exc.lineno}: {exc.msg})") from None
    offs = _line_offsets(text)
    found = []

    def span(node, first):
        return offs[first - 1], offs[min(node.end_lineno, len(offs) - 1)]

    def walk(node, prefix, in_function):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([ch.lineno] + [d.lineno for d in ch.decorator_list])
                found.append((prefix + ch.name, span(ch, first)))
                walk(ch, prefix + ch.name + ".",
                     in_function or not isinstance(ch, ast.ClassDef))
            elif isinstance(ch, (ast.Assign, ast.AnnAssign)) and not in_function:
                targets = ch.targets if isinstance(ch, ast.Assign) else [ch.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            found.append((prefix + n.id, span(ch, ch.lineno)))
            else:
                walk(ch, prefix, in_function)

    walk(tree, "", False)
    return found


def _c_units(text, name):
    masked = _masked(text, _C_MASK)
    spans = []
    lines = text.splitlines(keepends=True)
    offs = _line_offsets(text)
    directive = re.compile(r"[ \t]*#")
    in_directive = [False] * len(lines)     # preprocessor lines, continuations included
    cont = False
    for i, line in enumerate(lines):
        in_directive[i] = cont or bool(directive.match(line))
        cont = in_directive[i] and line.rstrip("\r\n").endswith("\\")
    define = re.compile(r"[ \t]*#[ \t]*define[ \t]+" + re.escape(name) + r"\b")
    for i, line in enumerate(lines):
        if define.match(masked[offs[i]:offs[i + 1]]):
            j = i
            while j + 1 < len(lines) and lines[j].rstrip("\r\n").endswith("\\"):
                j += 1
            spans.append((offs[i], offs[j + 1]))
    # a function: NAME( at brace depth 0 outside any directive, its ")" followed by "{"
    depth, depth_at = 0, []
    for ch in masked:
        depth_at.append(depth)
        depth += (ch == "{") - (ch == "}")
    line_of = lambda pos: bisect.bisect_right(offs, pos) - 1   # noqa: E731
    for m in re.finditer(r"(?<![\w:~])" + re.escape(name) + r"\s*\(", masked):
        if depth_at[m.start()] or in_directive[line_of(m.start())]:
            continue
        level, pos = 0, m.end() - 1
        while pos < len(masked):
            level += (masked[pos] == "(") - (masked[pos] == ")")
            if level == 0:
                break
            pos += 1
        body = re.compile(r"\)[\w\s]*\{").match(masked, pos)   # ") const {", ") {"
        if not body:
            continue        # a declaration or a call
        level, pos = 0, body.end() - 1
        while pos < len(masked):
            level += (masked[pos] == "{") - (masked[pos] == "}")
            if level == 0:
                break
            pos += 1
        spans.append((offs[line_of(m.start())], offs[line_of(pos) + 1]))
    return spans


def _verilog_units(text, name):
    masked = _masked(text, _V_MASK)
    offs = _line_offsets(text)
    spans = []
    for m in re.finditer(r"^[ \t]*(?:macro)?module[ \t]+" + re.escape(name) + r"\b", masked, re.M):
        end = re.compile(r"\bendmodule\b").search(masked, m.end())
        if end:
            stop = bisect.bisect_right(offs, end.end() - 1)
            spans.append((m.start(), offs[stop] if stop < len(offs) else len(text)))
    return spans


def unit_spans(text, path, unit):
    """The (start, end) character spans in text of every definition of unit in path."""
    ext = os.path.splitext(path)[1]
    if ext == ".py":
        return [sp for name, sp in _python_units(text, path) if name == unit]
    if ext in (".c", ".h", ".cpp", ".cc", ".hpp"):
        return _c_units(text, unit)
    if ext in (".v", ".sv"):
        return _verilog_units(text, unit)
    raise NotApplicable(f"no units in {path} (a {ext or 'extensionless'} file)")


def pattern(old):
    """old as a regular expression: its words literal, each whitespace run any whitespace."""
    return re.compile(r"\s+".join(re.escape(w) for w in old.split()))


def apply(text, m):
    """text with m applied; NotApplicable (one line) when its unit or its pattern is not there
    exactly once."""
    spans = unit_spans(text, m.path, m.unit)
    if not spans:
        raise NotApplicable(f"{m.unit} not found in {m.path} (renamed or removed: update "
                            "MUTATIONS in scripts/mutation_check.py)")
    if len(spans) > 1:
        raise NotApplicable(f"{m.unit} is defined {len(spans)} times in {m.path} (update "
                            "MUTATIONS in scripts/mutation_check.py)")
    start, end = spans[0]
    hits = list(pattern(m.old).finditer(text, start, end))
    if len(hits) != 1:
        raise NotApplicable(f"the pattern occurs {len(hits)} times in {m.unit} in {m.path} "
                            "(the code changed: update MUTATIONS in scripts/mutation_check.py)")
    return text[:hits[0].start()] + m.new.strip() + text[hits[0].end():]


def check_applies(root, muts):
    problems = []
    for m in muts:
        try:
            with open(os.path.join(root, m.path)) as f:
                apply(f.read(), m)
        except OSError as exc:
            problems.append(f"{m.name}: cannot read {m.path} ({exc.strerror})")
        except NotApplicable as exc:
            problems.append(f"{m.name}: {exc}")
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
            f.write(apply(original, m))
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
            print(f"{m.name:30s} {m.path + '::' + m.unit:56s} {m.what}  [{', '.join(m.tests)}]")
        return 0
    problems = check_applies(ROOT, muts)
    if problems:
        for line in problems:
            print(f"mutation_check.py: error: {line}", file=sys.stderr)
        print(json.dumps({"mutants": len(muts), "killed": 0, "not_applicable": len(problems)}))
        return 2
    if args.check:
        print(f"all {len(muts)} mutations apply (each pattern matches exactly once in its unit; "
              "every test file exists)")
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
