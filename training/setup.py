"""Seeding, data loaders, models and the logger of a run."""
from __future__ import annotations

import json
import os
import random
import sys
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

import data
import models

from .config import resmlp_shape


def seed_everything(seed: int, deterministic: bool) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


class ShardSampler(Sampler):
    """Every ``world``-th index from ``rank`` in order, no padding: the test set split
    exactly over the processes of a distributed run."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def make_loaders(dataset: str, *, dataset_dir: Optional[str], download: bool, batch_size: int,
                 test_batch_size: int, seed: int, device: torch.device, workers: int = 2,
                 synthetic_size: int = 4000, rank: int = 0, world_size: int = 1):
    """(train loader, test loader, info). Training batches are shuffled by a generator
    seeded with ``seed`` (in a distributed run: a ``DistributedSampler`` with that seed,
    reshuffled per epoch, ``batch_size`` images per process), drop_last."""
    train_set, test_set, info = data.get_datasets(dataset, dataset_dir, download,
                                                  synthetic_size=synthetic_size)
    workers = workers if dataset in ("cifar10", "svhn") else 0
    g = torch.Generator().manual_seed(seed)

    def init_worker(wid):
        s = (seed + rank * 1000 + wid) % 2 ** 32
        np.random.seed(s)
        random.seed(s)

    common = dict(num_workers=workers, pin_memory=device.type == "cuda",
                  worker_init_fn=init_worker if workers else None)
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler
        sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=seed, drop_last=True)
        train = DataLoader(train_set, batch_size=batch_size, sampler=sampler, drop_last=True,
                           generator=g, **common)
        test = DataLoader(test_set, batch_size=test_batch_size,
                          sampler=ShardSampler(len(test_set), rank, world_size), **common)
    elif hasattr(train_set, "batch") and hasattr(test_set, "batch"):
        # In-memory images (data.TensorImages): one call per batch, the same shuffle (the
        # sampler DataLoader(shuffle=True, generator=g) builds), the same augmentation draws.
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler
        train = DataLoader(data.BatchReader(train_set), batch_size=None, generator=g,
                           sampler=BatchSampler(RandomSampler(train_set, generator=g),
                                                batch_size, drop_last=True), **common)
        test = DataLoader(data.BatchReader(test_set), batch_size=None,
                          sampler=BatchSampler(SequentialSampler(test_set), test_batch_size,
                                               drop_last=False), **common)
    else:
        train = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                           generator=g, **common)
        test = DataLoader(test_set, batch_size=test_batch_size, shuffle=False, **common)
    return train, test, info


def images_of(loader):
    """The dataset of images behind a loader of :func:`make_loaders`."""
    ds = loader.dataset
    return ds.dataset if isinstance(ds, data.BatchReader) else ds


def batch_size_of(loader) -> int:
    """Images per batch of a loader of :func:`make_loaders`."""
    if loader.batch_size is not None:
        return loader.batch_size
    return loader.batch_sampler.batch_size if loader.batch_sampler is not None else loader.sampler.batch_size


def build_model(*, resnet: bool, act: str, hidden_factor: float, info, dataset: str,
                grid_size: int = 64, expansion: int = 8, grid_range: float = 4.0,
                spline_size: int = 65, spline_range: float = 4.0, impl: str = "auto"):
    """The ResNet-20 (``resnet``) or the ResMLP of ``dataset`` with ``act`` and ``hidden_factor``
    (the activation settings go to the activations that take them)."""
    if resnet:
        return models.build_resnet20(in_channels=info["in_channels"], num_classes=info["num_classes"])
    settings = models.activation(act).pick(grid_size=grid_size, expansion=expansion,
                                           grid_range=grid_range, spline_size=spline_size,
                                           spline_range=spline_range, impl=impl)
    return models.build_resmlp(act, hidden_factor, in_channels=info["in_channels"],
                               num_classes=info["num_classes"], **settings,
                               img_size=info.get("img_size", 32), **resmlp_shape(dataset))


class Logger:
    """Human lines and JSON lines on stdout (and JSON lines appended to ``path``);
    silent when ``enabled`` is False (ranks other than 0)."""

    def __init__(self, path: Optional[str] = None, enabled: bool = True):
        self.path = path
        self.enabled = enabled

    def line(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def json(self, **record) -> None:
        if not self.enabled:
            return
        text = json.dumps(record, sort_keys=True)
        print(text, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(text + "\n")


def note(text: str) -> None:
    """A one-line note on stderr."""
    print(text, file=sys.stderr, flush=True)
