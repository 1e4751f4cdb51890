"""--checkpoint-dir / --resume: real kills, exact continuation, refusals."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = ["--dataset", "synthetic", "--synthetic-size", "400", "--batch-size", "50", "--disable-tqdm"]


def cmd(*args):
    return [sys.executable, "-u", os.path.join(ROOT, "cifar10_main.py"), *BASE, *args]


def run(*args):
    proc = subprocess.run(cmd(*args), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def run_until(args, phase, kill_signal):
    """Start a run and kill it (for real) right after it saves a state in ``phase``."""
    proc = subprocess.Popen(cmd(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("{"):
            rec = json.loads(line)
            if rec.get("event") == "state_saved" and rec["phase"] == phase:
                proc.send_signal(kill_signal)
                break
    else:
        raise AssertionError("the run ended before reaching " + phase + "\n" + "".join(seen))
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(seen) + out, err


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "teacher.bin"
    run("--student-nl-act", "base", "--student-hidden-factor", "0.5", "--epochs", "2", "--save", str(path))
    return path


def student_args(teacher, out, ckdir):
    return ["--teacher-load", str(teacher), "--teacher-hidden-factor", "0.5", "--do-kt", "--kt-epochs", "2",
            "--do-kd", "--kd-epochs", "3", "--student-nl-act", "psa", "--student-hidden-factor", "0.25",
            "--save", str(out), "--checkpoint-dir", str(ckdir)]


def test_interrupted_runs_resume_bit_identically(teacher, tmp_path):
    straight = tmp_path / "straight.bin"
    run(*student_args(teacher, straight, tmp_path / "ck_straight"))

    resumed = tmp_path / "resumed.bin"
    ck = tmp_path / "ck"
    args = student_args(teacher, resumed, ck)
    # 1) SIGKILL right after a KT epoch is saved (block 0, epoch 1): no chance to clean up.
    rc, out, _ = run_until(args, "kt", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert not resumed.exists()
    # 2) resume; SIGTERM right after the first KD epoch is saved.
    rc, out, err = run_until(args + ["--resume"], "kd", signal.SIGTERM)
    assert "resuming from" in out
    assert rc == 128 + signal.SIGTERM, err
    assert "interrupted by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    assert not resumed.exists(), "an interrupted run must not write --save"
    # 3) resume to the end.
    run(*args, "--resume")
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming"


def test_fast_path_resumes_bit_identically(teacher, tmp_path):
    """--amp bf16 --compile: two processes that each train a part (killed after the first KD
    epoch, then resumed) give the bits of one straight run, so the fast path is deterministic
    across processes and its state complete."""
    fast = ["--amp", "bf16", "--compile"]

    def args(out, ck):
        return ["--teacher-load", str(teacher), "--teacher-hidden-factor", "0.5", "--do-kd",
                "--kd-epochs", "2", "--student-nl-act", "psa", "--student-hidden-factor", "0.25",
                "--save", str(out), "--checkpoint-dir", str(ck), *fast]

    straight = tmp_path / "straight.bin"
    run(*args(straight, tmp_path / "ck_straight"))
    resumed = tmp_path / "resumed.bin"
    rc, _, _ = run_until(args(resumed, tmp_path / "ck"), "kd", signal.SIGKILL)
    assert rc == -signal.SIGKILL and not resumed.exists()
    run(*args(resumed, tmp_path / "ck"), "--resume")
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype != torch.bfloat16, k
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming the fast path"


def test_truncated_state_is_never_used(teacher, tmp_path):
    ck = tmp_path / "ck"
    out = tmp_path / "s.bin"
    args = ["--teacher-load", str(teacher), "--teacher-hidden-factor", "0.5", "--do-kd", "--kd-epochs", "2",
            "--student-nl-act", "base", "--student-hidden-factor", "0.25", "--save", str(out),
            "--checkpoint-dir", str(ck), "--limit-train-batches", "2"]
    run(*args)
    state, prev = ck / "state.pt", ck / "state.prev.pt"
    assert state.exists() and prev.exists()
    # Simulate a crash in the middle of writing the newest state.
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 3])
    torn = state.read_bytes()
    # The previous state written with other settings: refused, naming the fallback.
    proc = subprocess.run(cmd(*args, "--resume", "--seed", "7"), cwd=ROOT, capture_output=True,
                          text=True)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "saved run used --seed 2023" in lines[0] and "state.prev.pt, used because" in lines[0]
    state.write_bytes(torn)
    proc = subprocess.run(cmd(*args, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "incomplete or corrupt" in proc.stdout and "resuming from" in proc.stdout
    warning = [l for l in proc.stdout.splitlines() if l.startswith("warning:")]
    assert len(warning) == 1 and "resuming from the previous state" in warning[0]
    events = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    fallback = [e for e in events if e["event"] == "resume_fallback"]
    assert len(fallback) == 1 and fallback[0]["used"].endswith("state.prev.pt")
    assert fallback[0]["reason"] == "incomplete or corrupt"
    # Nothing usable at all: a clear one-line refusal.
    for p in ck.iterdir():
        p.write_bytes(b"junk")
    proc = subprocess.run(cmd(*args, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "no complete training state in" in proc.stderr and "Traceback" not in proc.stderr


def test_mismatched_arguments_are_refused(teacher, tmp_path):
    ck = tmp_path / "ck"
    base = ["--student-nl-act", "base", "--student-hidden-factor", "0.25", "--epochs", "1",
            "--limit-train-batches", "2", "--checkpoint-dir", str(ck)]
    run(*base)
    for flag, value, shown in [("--student-hidden-factor", "0.5", "--student-hidden-factor 0.25"),
                               ("--seed", "7", "--seed 2023"), ("--epochs", "4", "--epochs 1")]:
        changed = list(base)
        if flag in changed:
            changed[changed.index(flag) + 1] = value
        else:
            changed += [flag, value]
        proc = subprocess.run(cmd(*changed, "--resume"), cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2, proc.stdout
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and f"saved run used {shown}" in lines[0], proc.stderr
    proc = subprocess.run(cmd("--resume"), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--resume needs --checkpoint-dir" in proc.stderr


def test_kt_without_kd_resumes_bit_identically_and_keeps_the_prefix_frozen(teacher, tmp_path):
    """The authors' KT with a B-spline student (one optimiser carried across blocks, TV(2)
    steps on later blocks) killed mid-KT and again in the plain training that follows KT
    without --do-kd; that plain training leaves the embedding and blocks 0..2 as KT left them."""
    def args(out, ck, kt):
        return ["--teacher-load", str(teacher), "--teacher-hidden-factor", "0.5", "--do-kt",
                "--kt-epochs", "2", "--epochs", "2", "--student-nl-act", "bspline",
                "--student-hidden-factor", "0.25", "--save", str(out), "--kt-save", str(kt),
                "--checkpoint-dir", str(ck), "--limit-train-batches", "3"]
    straight, kt = tmp_path / "straight.bin", tmp_path / "kt.bin"
    proc = run(*args(straight, tmp_path / "ck1", kt))
    assert "plain training follows with the embedding and blocks 0..2 frozen" in proc.stdout
    phases = [json.loads(l)["phase"] for l in proc.stdout.splitlines()
              if l.startswith("{") and json.loads(l)["event"] == "epoch"]
    assert phases == ["train", "train"]
    a, k, t = (torch.load(p, weights_only=True) for p in (straight, kt, teacher))
    for name in a:
        if name.startswith("embed_linear"):
            assert torch.equal(a[name], t[name]), name
        frozen = name.startswith(("layers.0.", "layers.1.", "layers.2."))
        if frozen and "running" not in name and "num_batches" not in name:
            assert torch.equal(a[name], k[name]), f"{name} moved in the plain training after KT"
    assert not torch.equal(a["classifier.weight"], k["classifier.weight"])

    resumed, ck = tmp_path / "resumed.bin", tmp_path / "ck2"
    rc, _, _ = run_until(args(resumed, ck, tmp_path / "kt2.bin"), "kt", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    rc, out, err = run_until(args(resumed, ck, tmp_path / "kt2.bin") + ["--resume"], "train",
                             signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, err
    run(*args(resumed, ck, tmp_path / "kt2.bin"), "--resume")
    b = torch.load(resumed, weights_only=True)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resuming"


def test_kt_mode_is_part_of_the_resume_check(teacher, tmp_path):
    ck = tmp_path / "ck"
    base = ["--teacher-load", str(teacher), "--teacher-hidden-factor", "0.5", "--do-kt", "--do-kd",
            "--kt-epochs", "1", "--kd-epochs", "1", "--student-nl-act", "base",
            "--student-hidden-factor", "0.25", "--limit-train-batches", "2", "--checkpoint-dir", str(ck)]
    run(*base)
    proc = subprocess.run(cmd(*base, "--kt-mode", "isolated", "--resume"), cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "saved run used --kt-mode 'authors'" in proc.stderr, proc.stderr
