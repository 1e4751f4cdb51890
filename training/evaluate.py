"""Test accuracy of a model on a loader: one plain function."""
from __future__ import annotations

import sys

import torch


def progress(iterable, enabled: bool, desc: str):
    """A tqdm bar on stderr when ``enabled``, else ``iterable`` itself."""
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


@torch.no_grad()
def evaluate(model, loader, device=None, *, show_progress: bool = False, desc: str = "test",
             distributed: bool = False) -> float:
    """Top-1 accuracy in percent of ``model`` (put in eval mode) over ``loader``.

    ``device`` defaults to the device of the model's first parameter. With
    ``distributed`` the correct/total counts are summed over every process, so each
    process must see its own shard of the test set.
    """
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.eval()
    correct = total = 0
    for x, y in progress(loader, show_progress, desc):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        correct += (model(x).argmax(1) == y).sum().item()
        total += y.numel()
    if distributed:
        import torch.distributed as dist
        counts = torch.tensor([correct, total], dtype=torch.float64, device=device)
        dist.all_reduce(counts)
        correct, total = int(counts[0].item()), int(counts[1].item())
    return 100.0 * correct / max(total, 1)
