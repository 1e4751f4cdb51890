"""scripts/gpu_compile_check.py: every Triton kernel compiles offline for sm_80 and sm_90
with Triton's bundled ptxas, without spills (no GPU needed). The suite compiles the bf16
variants (every kernel and launch configuration, 2 x 11 compiles); the script's default
run covers fp32, bf16 and fp16."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_compile_check.py")


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=1200)


def test_every_kernel_compiles_for_sm80_and_sm90_without_spills():
    proc = run("--targets", "80", "90", "--dtypes", "bf16", "-j", "2")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Four launch kernels: lerp forward/backward, PSA table forward/backward.
    assert summary["kernels"] == 4 and summary["uncovered"] == []
    assert summary["targets"] == ["sm_80", "sm_90"]
    assert summary["failed"] == 0 and summary["spills"] == 0
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| _")]
    assert len(rows) == summary["compiled"] == 2 * 11
    for row in rows:
        regs = int(row.split("|")[5])
        assert 0 < regs <= 255, row


def test_bad_target_is_one_line_error():
    proc = run("--targets", "70")
    assert proc.returncode == 2 and "compute capability 75 or newer" in proc.stderr
    assert "Traceback" not in proc.stderr
