"""PSA ("Personal Self-Attention") learnable 1-D functions and LERP-PSA.

Singh & Bazargan, "Compressing Neural Networks Using Learnable 1-D Non-Linear
Functions", ACM TRETS 18(2), 2025 (docs/METHOD.md sections 3 and 4). For feature ``i``
with ``E`` experts::

    q_k    = (x - b_ik)^2 / (w_ik^2 + eps)
    a_k    = softmax_k(-q_k)
    f_i(x) = o_i * sum_k a_k * v_ik * x + c_i

``PSA`` evaluates that exactly; ``LerpPSA`` samples it on a G-point grid over
[-R, R] and evaluates the samples by linear interpolation (``kernels.lerp``).
"""
from __future__ import annotations

import torch
from torch import nn

import kernels
from kernels import psa_function



class _PSAParams(nn.Module):
    """Holds the five PSA parameters and the epsilon buffer."""

    def __init__(self, num_features: int, expansion: int = 8, epsilon: float = 1.0):
        super().__init__()
        if num_features < 1 or expansion < 1:
            raise ValueError("num_features and expansion must be positive")
        self.num_features = int(num_features)
        self.expansion = int(expansion)
        self.v_weight = nn.Parameter(torch.empty(num_features, expansion))
        self.q_weight = nn.Parameter(torch.empty(num_features, expansion))
        self.q_bias = nn.Parameter(torch.empty(num_features, expansion))
        self.o_weight = nn.Parameter(torch.empty(num_features))
        self.o_bias = nn.Parameter(torch.empty(num_features))
        # epsilon is a buffer (not learned) so that it travels with state_dict.
        self.register_buffer("epsilon", torch.tensor([float(epsilon)]))
        self.reset_parameters()

    def reset_parameters(self):
        # Initialisation used for distillation (docs/METHOD.md section 3).
        with torch.no_grad():
            self.q_weight.fill_(1.0)
            self.q_bias.uniform_(-1.0, 1.0)
            self.v_weight.normal_(0.0, 4.0)
            self.o_weight.fill_(1.0)
            self.o_bias.zero_()

    def function(self, x):
        return psa_function(x, self.v_weight, self.q_weight, self.q_bias,
                            self.o_weight, self.o_bias, self.epsilon)


class PSA(_PSAParams):
    """Exact PSA activation (no table); input ``(..., F)``."""

    def forward(self, x):
        return self.function(x)

    def extra_repr(self):
        return f"{self.num_features}, expansion={self.expansion}, epsilon={self.epsilon.item():g}"


class LerpPSA(_PSAParams):
    """PSA evaluated through a per-feature lookup table with linear interpolation.

    The table ``T[i, j] = f_i(t_j)`` is built from the current parameters on every forward
    (with autograd through ``f`` on the grid points when a gradient is needed), in training
    and in eval mode alike, so it is never stale, whatever changed the parameters (an
    optimizer step, an in-place edit through ``.data``, ``load_state_dict``, ``.to()``). A
    table kept between eval calls would need the parameter values compared on every call
    (no cheaper key sees a ``.data`` edit): a device-to-host synchronisation per layer and
    call on a GPU, for a saving of one (F, G) table build. Inputs outside [-R, R] use the
    edge segments linearly.
    """

    def __init__(self, num_features: int, expansion: int = 8, grid_size: int = 64,
                 grid_range: float = 4.0, epsilon: float = 1.0, impl: str = "auto"):
        if grid_size < 2:
            raise ValueError("grid_size must be at least 2")
        if grid_range <= 0:
            raise ValueError("grid_range must be positive")
        super().__init__(num_features, expansion, epsilon)
        self.grid_size = int(grid_size)
        self.grid_range = float(grid_range)
        self.impl = impl
        self._grid_cache = None

    def grid_points(self, device=None, dtype=torch.float32):
        """The G grid abscissae ``t_j = -R + j * 2R / (G - 1)``."""
        # linspace, as the authors' code: bit-identical released grid buffers.
        return torch.linspace(-self.grid_range, self.grid_range, self.grid_size,
                              device=device, dtype=dtype)

    def _grid(self, device, dtype):
        """``grid_points`` kept between calls in eager mode (one linspace less per forward);
        keyed on device, dtype, size and range, none of which needs a synchronisation."""
        if torch.compiler.is_compiling():
            return self.grid_points(device, dtype)
        key = (device, dtype, self.grid_size, self.grid_range)
        if self._grid_cache is None or self._grid_cache[0] != key:
            # A normal tensor even when first built under torch.inference_mode(): an inference
            # tensor could not be saved for a later training backward.
            with torch.inference_mode(False):
                self._grid_cache = (key, self.grid_points(device, dtype))
        return self._grid_cache[1]

    def compute_table(self, residual: bool = False):
        """Table (F, G) of the exact PSA function on the grid (with autograd).

        ``residual=True`` adds the grid abscissae, ``T[i, j] + t_j``: the table of
        ``x + f_i(x)``. Both are piecewise linear on the same grid, extrapolation
        included, so ``lerp(x, T + t) == x + lerp(x, T)`` in exact arithmetic, and
        the residual costs an (F, G) add instead of a pass over the activations."""
        t = self._grid(self.v_weight.device, self.v_weight.dtype)
        # epsilon goes in as the buffer itself: read by the kernel, no host sync.
        table = kernels.psa_table(self.v_weight, self.q_weight, self.q_bias, self.o_weight,
                                  self.o_bias, self.epsilon, t, impl=self.impl)
        return table + t if residual else table

    def _apply(self, fn, *args, **kwargs):
        self._grid_cache = None
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x):
        return kernels.lerp(x, self.compute_table(), self.grid_range, impl=self.impl)

    def extra_repr(self):
        return (f"{self.num_features}, expansion={self.expansion}, grid_size={self.grid_size}, "
                f"grid_range={self.grid_range:g}")


class ResidualLerpPSA(nn.Module):
    """The LERP-PSA sublayer of the paper's MLP: ``x + LerpPSA(x)``, computed as
    one lookup in the table ``T + t`` (the residual folded into the table).

    The inner module is stored as ``psa`` so state_dict keys match the
    authors' released checkpoints (``...layers.0.psa.v_weight``).
    """

    def __init__(self, num_features: int, **kwargs):
        super().__init__()
        self.psa = LerpPSA(num_features, **kwargs)

    @property
    def num_features(self):
        return self.psa.num_features

    def forward(self, x):
        # x + LerpPSA(x) as one lookup in the table T + t (see LerpPSA.compute_table).
        return kernels.lerp(x, self.psa.compute_table(residual=True), self.psa.grid_range,
                            impl=self.psa.impl)
