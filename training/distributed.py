"""Multi-process training under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N cifar10_main.py ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`init` then joins the process group (NCCL on CUDA, Gloo on the CPU),
and each process trains on its own shard of every epoch (``DistributedSampler``, reshuffled
per epoch) with ``--batch-size`` images per step. Only rank 0 prints, writes JSON lines,
``--save``/``--kt-save`` files and ``--checkpoint-dir`` states. A plain ``python`` run
(no ``WORLD_SIZE``) never touches ``torch.distributed``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module, device):
        """DistributedDataParallel around ``module`` in a multi-process run, else ``module``."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [device.index] if device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


def init(use_cuda: bool) -> Dist:
    """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    if not dist.is_available():
        raise UserError("this PyTorch build has no torch.distributed; run without torchrun")
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s); "
                            "lower --nproc_per_node")
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return Dist(rank=rank, world_size=world, local_rank=local, backend=backend)


def device_for(d: Dist, use_cuda: bool) -> torch.device:
    if use_cuda:
        return torch.device("cuda", d.local_rank) if d.enabled else torch.device("cuda")
    return torch.device("cpu")
