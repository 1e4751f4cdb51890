"""ResMLP for small images with ReLU, B-spline or LERP-PSA MLPs.

Touvron et al., "ResMLP: Feedforward networks for image classification with
data-efficient training" (2021), at the size used by Singh & Bazargan (TRETS
2025, docs/METHOD.md section 2): patch 4, embed 96, 4 blocks (SVHN: embed 64,
2 blocks, docs/METHOD.md section 6). Submodule names follow the
authors' released checkpoints, so a native ``state_dict`` differs from theirs
only in the B-spline coefficient layout and LERP-PSA's derived grid buffers
(see ``models.checkpoint``).
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import ModelConfigError, activation


def common_dtype(a: torch.Tensor, b: torch.Tensor):
    """``a`` and ``b`` in their promoted dtype (no copy when they already share it).

    Under ``torch.autocast`` the Linear layers return bfloat16 while the Affine parameters and
    the residual stream are float32. PyTorch computes such a mixed-dtype elementwise op through
    a generic casting loop, on the CPU about 40x slower than the same op on one dtype (1.8 ms
    against 0.04 ms for a 128 x 64 x 96 add here): one explicit cast, then a same-dtype op, is
    cheaper. The values are those of the mixed op (it promotes the same way)."""
    if a.dtype == b.dtype:
        return a, b
    dt = torch.promote_types(a.dtype, b.dtype)
    return a.to(dt), b.to(dt)


def residual_add(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``x + h`` in the promoted dtype (see :func:`common_dtype`)."""
    x, h = common_dtype(x, h)
    return x + h


class Affine(nn.Module):
    """Per-channel ``x * w + b`` (ResMLP's Aff), w initialised to ``init``."""

    def __init__(self, dim: int, init: float = 0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), float(init)))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        x, w = common_dtype(x, self.weight)
        return x * w + self.bias


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over channels with every token of every image a sample.

    The (B, N, D) tokens are read as a (B * N, D) matrix, channels last: the same statistics
    (over all B * N samples of a channel, unbiased variance for the running estimate) as
    ``BatchNorm1d`` on the transposed (B, D, N) tensor, without the two transposes. PyTorch's
    CPU kernels for a contiguous (M, C) input are the channels-last ones: in a Fashion-MNIST
    training step they cost about a fifth of the transposed form (scripts/bench_train.py).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim, eps=1e-5, momentum=0.1)

    def forward(self, x):  # x: (..., D)
        return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)


class CrossPatch(nn.Module):
    """``x + A2(Lin_T(BN(x)))`` with a Linear across the tokens."""

    def __init__(self, num_patches: int, dim: int):
        super().__init__()
        # Attribute order fixes state_dict key order (the authors' order).
        self.affine_1 = TokenBatchNorm(dim)
        self.affine_2 = Affine(dim)
        self.layers = nn.Linear(num_patches, num_patches)

    def forward(self, x):  # x: (B, N, D)
        u = self.affine_1(x)
        # Lin_T applied to every channel: h[b] = W u[b] + bias (a column), as one batched
        # matrix product on the (B, N, D) tokens as they lie in memory, where
        # ``Linear(u.transpose(1, 2)).transpose(1, 2)`` computes the same through two strided
        # copies (docs/PERFORMANCE.md).
        lin = self.layers
        h = torch.baddbmm(lin.bias.view(1, -1, 1), lin.weight.expand(u.shape[0], -1, -1), u)
        return residual_add(x, self.affine_2(h))


class CrossChannel(nn.Module):
    """``x + A2(MLP(BN(x)))``; the MLP is the activation's (``models.registry``)."""

    def __init__(self, dim: int, mlp: nn.Module):
        super().__init__()
        self.affine_1 = TokenBatchNorm(dim)
        self.affine_2 = Affine(dim)
        self.layers = mlp

    def forward(self, x):
        return residual_add(x, self.affine_2(self.layers(self.affine_1(x))))


class ResMLPBlock(nn.Module):
    def __init__(self, num_patches: int, dim: int, mlp: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(CrossPatch(num_patches, dim), CrossChannel(dim, mlp))

    def forward(self, x):
        return self.layers(x)


def hidden_size(embed_dim: int, hidden_factor: float) -> int:
    h = int(embed_dim * hidden_factor)
    if h < 1:
        raise ModelConfigError(f"hidden factor {hidden_factor:g} gives an empty hidden layer "
                               f"(int({embed_dim} * {hidden_factor:g}) = {h}); pass a larger "
                               "hidden factor")
    return h


class ResMLP(nn.Module):
    """ResMLP classifier with activation ``act`` (a name of ``models.registry``) in every
    block's channel MLP, hidden size ``int(embed_dim * hidden_factor)``; ``settings`` go to
    the activation (its settings and ``impl``; anything else is refused)."""

    arch = "resmlp"

    def __init__(self, act: str, hidden_factor: float, *, in_channels: int = 3,
                 img_size: int = 32, num_classes: int = 10, embed_dim: int = 96, depth: int = 4,
                 patch_size: int = 4, **settings):
        super().__init__()
        spec = activation(act)
        hidden = hidden_size(embed_dim, hidden_factor)
        settings = spec.check_settings(settings)
        if patch_size < 1 or img_size % patch_size:
            raise ModelConfigError(f"img_size {img_size} is not a multiple of patch_size "
                                   f"{patch_size}; pick a patch size that divides it")
        if embed_dim < 1 or depth < 1 or in_channels < 1 or num_classes < 1:
            raise ModelConfigError(
                f"ResMLP sizes must be positive (embed_dim {embed_dim}, depth {depth}, "
                f"in_channels {in_channels}, num_classes {num_classes})")
        self.act = spec.name
        self.hidden_factor = float(hidden_factor)
        self.in_channels = in_channels
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid = img_size // patch_size
        num_patches = self.grid ** 2
        self.embed_linear = nn.Linear(in_channels * patch_size ** 2, embed_dim)
        self.layers = nn.Sequential(*[
            ResMLPBlock(num_patches, embed_dim, spec.mlp(embed_dim, hidden, **settings))
            for _ in range(depth)])
        self.affine = TokenBatchNorm(embed_dim)
        self.classifier = nn.Linear(embed_dim, num_classes)

    @property
    def activation(self):
        """The description of this model's activation (``models.registry.Activation``)."""
        return activation(self.act)

    def patchify(self, x):
        """(B, C, H, W) -> (B, N, p*p*C), rows of the patch grid first; inside a
        token the value index is ``(r * p + c) * C + channel`` (docs/METHOD.md section 2)."""
        B, C, H, W = x.shape
        if C != self.in_channels or H != self.img_size or W != self.img_size:
            raise ValueError(
                f"expected images of shape (B, {self.in_channels}, {self.img_size}, "
                f"{self.img_size}), got {tuple(x.shape)}")
        p, g = self.patch_size, self.grid
        x = x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, g * g, p * p * C)

    def forward_features(self, x):
        return self.layers(self.embed_linear(self.patchify(x)))

    def head(self, tokens):
        return self.classifier(self.affine(tokens).mean(dim=1))

    def forward(self, x):
        return self.head(self.forward_features(x))


def build_resmlp(act: str, hidden_factor: float, *, in_channels: int = 3, img_size: int = 32,
                 num_classes: int = 10, embed_dim: int = 96, depth: int = 4,
                 patch_size: int = 4, **act_kwargs) -> ResMLP:
    """Build the paper's ResMLP with ``act`` (base, bspline, psa or an alias such as relu,
    lerp_psa) and hidden size ``int(embed_dim * hidden_factor)``. Extra keyword arguments go
    to the activation: its settings (grid_size, expansion, ...) and ``impl``; any other is a
    one-line ``ModelConfigError``."""
    return ResMLP(act, hidden_factor, in_channels=in_channels, img_size=img_size,
                  num_classes=num_classes, embed_dim=embed_dim, depth=depth,
                  patch_size=patch_size, **act_kwargs)
