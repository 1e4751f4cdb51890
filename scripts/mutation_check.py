#!/usr/bin/env python
"""Mutation check: do the tests catch small, realistic bugs?

Each mutation below names a file, the exact text it replaces (which must occur exactly once),
the replacement, and the tests that must catch it. The script copies the checkout (tracked
and untracked-but-not-ignored files) to a scratch folder once, then for each mutation: writes
the mutated file, runs its tests there with pytest (-x, stop at the first failure), and
restores the file. A mutant is killed when pytest reports a failing test (exit status 1).

  python scripts/mutation_check.py              # every mutation (about 20-40 min on 2 cores)
  python scripts/mutation_check.py --list       # the mutations, nothing run
  python scripts/mutation_check.py --only lerp-ref-frac-clamp cpu-c-step
  nice -n 10 python scripts/mutation_check.py --keep   # keep the scratch copy for a look

Prints a table (mutation, file, killed by) and, as its last line, one JSON object
{"mutants": N, "killed": K, "seconds": S}. Exits 1 when a mutant survives, 2 when a mutation
no longer applies (its text moved: update the list below). Not part of CI: run it after
changing the kernels, the activations, checkpoint loading, resume or the fpga arithmetic.
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
    tests: tuple       # pytest arguments: test files, or file::test node ids
    what: str          # the bug, in words

    def __post_init__(self):
        if self.old == self.new:
            raise ValueError(f"{self.name}: old and new are the same")


M = Mutation
MUTATIONS = [
    # ---------------------------------------------------------------- reference kernels
    M("lerp-ref-frac-clamp", "kernels/lerp_reference.py",
      "    frac = u - j\n    return j.long(), frac",
      "    frac = (u - j).clamp(0, 1)\n    return j.long(), frac",
      ("tests/test_kernels_reference.py",),
      "reference LERP clamps the fraction: no edge extrapolation"),
    M("lerp-ref-grad-x-scale", "kernels/lerp_reference.py",
      "slope = (t[idx + 1] - t[idx]) * ((G - 1) / (2.0 * ctx.grid_range))",
      "slope = (t[idx + 1] - t[idx]) * (G / (2.0 * ctx.grid_range))",
      ("tests/test_kernels_reference.py",),
      "reference LERP input gradient uses G instead of G - 1"),
    M("lerp-ref-grad-table-swap", "kernels/lerp_reference.py",
      "acc.index_add_(0, flat_idx, ((1.0 - frac) * g).reshape(-1))",
      "acc.index_add_(0, flat_idx, (frac * g).reshape(-1))",
      ("tests/test_kernels_reference.py",),
      "reference LERP table gradient: left weight frac instead of 1 - frac"),
    # ---------------------------------------------------------------- C kernels
    M("cpu-c-step", "kernels/csrc/lerp_cpu.c",
      "    const T step = (T)(2.0 * range / (double)(g - 1));                               \\\n"
      "    const T jmax = (T)(g - 2);                                                       \\\n"
      "    _Pragma(\"omp parallel for schedule(static) num_threads(threads)\")               \\\n"
      "    for (int64_t row = 0; row < n; ++row) {",
      "    const T step = (T)(2.0 * range / (double)(g));                                   \\\n"
      "    const T jmax = (T)(g - 2);                                                       \\\n"
      "    _Pragma(\"omp parallel for schedule(static) num_threads(threads)\")               \\\n"
      "    for (int64_t row = 0; row < n; ++row) {",
      ("tests/test_kernels_fast.py",),
      "C forward: grid step 2R/G instead of 2R/(G-1)"),
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

    t_start = time.time()
    jobs = max(1, min(args.jobs, len(muts)))
    scratches = [tempfile.mkdtemp(prefix="mutation_check_") for _ in range(jobs)]
    rows, killed = {}, 0
    lock = threading.Lock()
    try:
        for scratch in scratches:
            make_scratch(ROOT, scratch)
        envs = [dict(os.environ, TRITON_INTERPRET="1", PYTHONDONTWRITEBYTECODE="1",
                     LERP_CPU_CACHE=os.path.join(scratch, ".cache", "lerp_cpu")) for scratch in scratches]
        for env in envs:
            env.pop("REPRO_STRICT_ORACLES", None)
        if not args.no_baseline:
            # The unmutated tests must pass, or no mutant result means anything.
            targets = sorted({t for m in muts for t in m.tests})
            print(f"baseline: {len(targets)} test target(s) unmutated in {scratches[0]} ...", file=sys.stderr)
            base = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *targets],
                                  cwd=scratches[0], env=envs[0], capture_output=True, text=True)
            if base.returncode != 0:
                print(base.stdout[-3000:] + base.stderr[-2000:], file=sys.stderr)
                print("mutation_check.py: error: the unmutated tests do not pass; fix them first",
                      file=sys.stderr)
                return 2
            print(f"baseline passed ({time.time() - t_start:.0f} s)", file=sys.stderr)
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
    finally:
        for scratch in scratches:
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
    print(json.dumps({"mutants": len(rows), "killed": killed, "seconds": round(total)}))
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
