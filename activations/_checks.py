"""Guard against non-finite values reaching an activation during training."""
from __future__ import annotations

import torch


class NonFiniteActivationError(FloatingPointError):
    """Raised when NaN or inf reaches an activation in training mode."""


#: Set to False to skip the check (it costs one reduction and a device sync).
CHECK_FINITE = True


def check_finite(module: torch.nn.Module, x: torch.Tensor) -> None:
    if not (CHECK_FINITE and module.training) or torch.compiler.is_compiling():
        # Under torch.compile the guard is skipped: reading the sum on the host
        # would break the graph (non-finite values are caught from the loss).
        return
    # One summing pass (NaN and inf propagate into the sum) is several times
    # cheaper than isfinite().all(); count exactly only when it trips.
    total = torch.sum(x.detach(), dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(total)) and not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteActivationError(
            f"{type(module).__name__}({x.shape[-1]} features) received {n_nan} NaN and "
            f"{n_inf} inf values; lower the learning rate or check the input data")
