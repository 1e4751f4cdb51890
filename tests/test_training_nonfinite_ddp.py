"""A NaN on one process of a multi-process run stops every process with the same one line.

Two CPU processes (Gloo, torch.multiprocessing) train a small ResMLP with
DistributedDataParallel through ``training.loops``; only process 1's first batch holds NaN.
Without the agreement after each step, process 1 raised alone and process 0 went on into the
gradient all-reduce, waiting there for a peer that had left (until the collective failed or
timed out). Each process reports what it raised to a file; the parent gives up after a
deadline, so a hang fails the test instead of blocking it.
"""
import json
import math
import os
import socket
import sys
import time
from datetime import timedelta

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, act, impl, out):
    sys.path.insert(0, ROOT)
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, TensorDataset

    from models import build_resmlp
    from training.loops import Loop, train_plain
    from training.nonfinite import NonFiniteTrainingError
    from training.session import Session
    from training.setup import Logger

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=30))
    try:
        torch.manual_seed(0)
        model = build_resmlp(act, 0.5, in_channels=1, embed_dim=8, depth=1, impl=impl)
        g = torch.Generator().manual_seed(rank)
        x = torch.randn(8, 1, 32, 32, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        if rank == 1:
            x[:4] = math.nan                      # this process's first batch only
        loader = DataLoader(TensorDataset(x, y), batch_size=4)
        log = Logger(enabled=rank == 0)
        loop = Loop(device=torch.device("cpu"), log=log, session=Session(model, None, log),
                    distributed=True, wrap=lambda m: DDP(m))
        try:
            train_plain(model, loader, loader, loop, epochs=1, lr=1e-3, wd=0.0)
            result = dict(raised=None)
        except NonFiniteTrainingError as exc:
            result = dict(raised="NonFiniteTrainingError", message=str(exc))
        except Exception as exc:  # what the test must not see
            result = dict(raised=type(exc).__name__, message=str(exc)[:500])
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


# base: the NaN reaches the loss; psa with the reference kernel: the NaN index makes the
# kernel fail before any loss exists. Either way the first layer is named.
@pytest.mark.parametrize("act,impl", [("base", "auto"), ("psa", "reference")])
def test_nan_on_one_process_stops_every_process_with_one_line(tmp_path, act, impl):
    import torch.multiprocessing as mp
    ctx = mp.start_processes(_worker, args=(2, _free_port(), act, impl, str(tmp_path)),
                             nprocs=2, join=False, start_method="spawn")
    end, done = time.monotonic() + 120, False
    try:
        while not done and time.monotonic() < end:
            done = ctx.join(timeout=2)
    except mp.ProcessRaisedException as exc:
        pytest.fail(f"a process failed outside the loop: {exc}")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    assert done, "the processes were still running after 120 s (waiting in a collective)"
    got = []
    for rank in (0, 1):
        path = tmp_path / f"rank{rank}.json"
        assert path.exists(), f"process {rank} reported nothing"
        got.append(json.loads(path.read_text()))
    for rank, r in enumerate(got):
        assert r["raised"] == "NonFiniteTrainingError", f"process {rank}: {r}"
        assert "\n" not in r["message"]
    assert got[0]["message"] == got[1]["message"], "every process stops with the same line"
    msg = got[0]["message"]
    assert msg.startswith("non-finite values in training at training epoch 1, batch 0 on process "
                          "1 of 2: layer embed_linear (Linear, 16 features) received "), msg
