"""Where a non-finite loss came from.

The training step reads the loss once anyway (for the epoch's mean); when that value is NaN
or inf the loop calls :func:`first_nonfinite_layer`, which runs the same batch again with
forward pre-hooks on every leaf module and names the first one (in call order) whose input
held NaN or inf. The activations themselves no longer check their inputs, so a healthy
training step has no extra device synchronisation.

Under torchrun a NaN on one process must stop all of them: the others would otherwise go on
to the gradient all-reduce and wait there for the one that stopped until the collective
times out. :func:`any_process` (one small all-reduce per step, every process) tells each
process whether any of them saw a non-finite loss; then :func:`stop_every_process` reruns
every process's batch (in step, so that DistributedDataParallel's collectives in the rerun
match), gathers what each found and raises the same one line on every process, naming the
process and the layer.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from errors import UserError


class NonFiniteTrainingError(UserError):
    """NaN or inf in training (one line: phase, epoch, batch, first layer)."""


def _describe(name: str, module: nn.Module, x: torch.Tensor) -> str:
    what = type(module).__name__
    feats = getattr(module, "num_features", None) or getattr(module, "in_features", None)
    if feats is not None:
        what += f", {feats} features"
    n_nan = int(torch.isnan(x).sum())
    n_inf = int(torch.isinf(x).sum())
    return f"layer {name} ({what}) received {n_nan} NaN and {n_inf} inf values"


def first_nonfinite_layer(model: nn.Module, rerun: Callable[[], object]) -> Optional[str]:
    """Run ``rerun()`` (the failing forward) with pre-hooks on every submodule of ``model``;
    describe the first one (in call order) whose floating-point input is not finite, or None.

    Every submodule is hooked, not only the leaves: a module may compute without calling its
    children (``ResidualLerpPSA`` looks up its own folded table and never calls its ``psa``).
    When a container and then its first child receive the same tensor, the child is named.

    Runs under ``torch.no_grad``; batch-norm statistics may move, so only call it on a run
    that is being abandoned."""
    found = []                     # [(name, description, the non-finite input)]
    names = {mod: name for name, mod in model.named_modules() if name}

    def hook(mod, inputs):
        name = names[mod]
        if found and not (name.startswith(found[0][0] + ".")
                          and any(x is found[0][2] for x in inputs)):
            return                 # already found, and this is not a child taking the same input
        for x in inputs:
            if torch.is_tensor(x) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
                found[:] = [(name, _describe(name, mod, x.detach()), x)]
                return

    handles = [m.register_forward_pre_hook(hook) for m in names]
    try:
        with torch.no_grad():
            rerun()
    except Exception:  # the forward may fail further on; the first layer is what we want
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0][1] if found else None


def raise_nonfinite(where: str, epoch: int, batch: int, loss_value: float, model: nn.Module,
                    rerun: Callable[[], object], only_if_found: bool = False) -> None:
    """Raise the one-line error for a non-finite loss (or, with ``only_if_found``, for a
    failed forward pass, and only when a layer did receive NaN/inf)."""
    layer = first_nonfinite_layer(model, rerun)
    if layer is None and only_if_found:
        return
    detail = layer or f"the loss is {loss_value} (every layer's input was finite)"
    raise NonFiniteTrainingError(
        f"non-finite values in training at {where} epoch {epoch}, batch {batch}: {detail}; "
        "lower the learning rate or check the data")


def any_process(bad: bool, device) -> bool:
    """Whether any process of the group has ``bad`` set (every process must call it)."""
    import torch.distributed as dist
    flag = torch.tensor([1.0 if bad else 0.0], device=device)
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


def stop_every_process(where: str, epoch: int, batch: int, loss_value: float, model: nn.Module,
                       rerun: Callable[[], object], failure: Optional[BaseException] = None) -> None:
    """Called by every process once :func:`any_process` said yes: rerun this process's batch
    to find the first layer with a non-finite input, gather the findings, and raise one
    :class:`NonFiniteTrainingError` naming the first process that failed (the same line on
    every process). ``failure``: the exception this process's forward raised, if it did; when
    no layer explains it, it is a bug: this process re-raises it (with its traceback) and the
    others stop with a line that points to it."""
    import torch.distributed as dist
    bad = failure is not None or not math.isfinite(loss_value)
    layer = first_nonfinite_layer(model, rerun)
    found = [None] * dist.get_world_size()
    dist.all_gather_object(found, (bad, loss_value, layer, failure is not None))
    rank = next(r for r, f in enumerate(found) if f[0])
    _, value, layer, raised = found[rank]
    world = len(found)
    if raised and layer is None:
        if failure is not None and rank == dist.get_rank():
            raise failure
        raise NonFiniteTrainingError(
            f"process {rank} of {world} failed at {where} epoch {epoch}, batch {batch} with an "
            "error that is not a non-finite value (see its traceback); this is a bug, please "
            "report it")
    detail = layer or f"the loss is {value} (every layer's input was finite)"
    raise NonFiniteTrainingError(
        f"non-finite values in training at {where} epoch {epoch}, batch {batch} on process "
        f"{rank} of {world}: {detail}; lower the learning rate or check the data")
