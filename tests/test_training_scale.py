"""--amp, --compile and torchrun (2 Gloo processes) on tiny synthetic data."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cifar10_main  # noqa: E402

TINY = ["--dataset", "synthetic", "--synthetic-size", "200", "--batch-size", "25", "--disable-tqdm",
        "--student-hidden-factor", "0.25"]


def records(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "t.bin"
    assert cifar10_main.main([*TINY, "--student-nl-act", "base", "--kd-epochs", "1",
                              "--limit-train-batches", "2", "--save", str(path)]) == 0
    return path


def check_student(path):
    sd = torch.load(path, weights_only=True)
    assert all(v.dtype not in (torch.float16, torch.bfloat16) for v in sd.values())
    assert all(torch.isfinite(v.float()).all() for v in sd.values())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_trains_kt_and_kd(teacher, tmp_path, capsys, amp):
    capsys.readouterr()
    out = tmp_path / "s.bin"
    rc = cifar10_main.main([*TINY, "--teacher-load", str(teacher), "--do-kt", "--do-kd",
                            "--kt-epochs", "1", "--kd-epochs", "1", "--limit-train-batches", "2",
                            "--student-nl-act", "psa", "--save", str(out), "--amp", amp])
    text, err = capsys.readouterr()
    assert rc == 0, err
    losses = [r["loss"] for r in records(text) if r["event"] in ("kt_epoch", "epoch")]
    assert len(losses) == 5 and all(v == v and abs(v) < 1e3 for v in losses), losses
    check_student(out)


def test_compile_trains(tmp_path, capsys):
    out = tmp_path / "s.bin"
    rc = cifar10_main.main([*TINY, "--student-nl-act", "psa", "--kd-epochs", "1",
                            "--limit-train-batches", "2", "--compile", "--save", str(out)])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert [r["event"] for r in records(text)].count("epoch") == 1
    check_student(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp.bin"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}",
           os.path.join(ROOT, "cifar10_main.py"), *TINY[:-2], "--synthetic-size", "400",
           "--student-nl-act", "base", "--student-hidden-factor", "0.5", "--kd-epochs", "3",
           "--no-cuda", "--save", str(out), "--checkpoint-dir", str(tmp_path / "ck")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recs = records(proc.stdout)
    start = [r for r in recs if r["event"] == "start"]
    assert len(start) == 1 and start[0]["world_size"] == 2 and start[0]["backend"] == "gloo"
    epochs = [r for r in recs if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3], "rank 0 alone prints"
    assert "distributed: 2 processes (gloo), batch 25 per process, 50 per step" in proc.stdout
    final = [r for r in recs if r["event"] == "done"][0]["accuracy"]
    assert final > 20.0, f"should be well above chance (10 %): {final}"
    assert (tmp_path / "ck" / "state.pt").exists()
    # Reload in a plain process: the whole test set gives the accuracy the run reported.
    again = subprocess.run([sys.executable, os.path.join(ROOT, "cifar10_main.py"), *TINY[:-2],
                            "--synthetic-size", "400", "--test-only", "--load", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert [r for r in records(again.stdout) if r["event"] == "test"][0]["accuracy"] == final
