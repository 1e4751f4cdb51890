"""Guard against non-finite values reaching an activation during training."""
from __future__ import annotations

import torch


class NonFiniteActivationError(FloatingPointError):
    """Raised when NaN or inf reaches an activation in training mode."""


#: Set to False to skip the check (it costs one reduction and a device sync).
CHECK_FINITE = True


def check_finite(module: torch.nn.Module, x: torch.Tensor) -> None:
    if not (CHECK_FINITE and module.training):
        return
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteActivationError(
            f"{type(module).__name__}({x.shape[-1]} features) received {n_nan} NaN and "
            f"{n_inf} inf values; lower the learning rate or check the input data")
