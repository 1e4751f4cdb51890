"""AdamW for the network and Adam for spline coefficients, each with its cosine schedule."""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from errors import UserError
from models.registry import spline_parameters


def split_params(modules: Iterable[nn.Module]) -> Tuple[List[nn.Parameter], List[nn.Parameter]]:
    """(spline coefficients, everything else) among the trainable parameters of ``modules``;
    which parameters are spline coefficients, each activation's description says
    (``models.registry``)."""
    spline, other = [], []
    for module in modules:
        spline.extend(spline_parameters([module]))
        ids = {id(p) for p in spline}
        other.extend(p for p in module.parameters() if p.requires_grad and id(p) not in ids)
    return spline, other


class Optimisers:
    """AdamW (``lr``, ``wd``) for the network, Adam (``spline_lr``, no weight decay) for
    B-spline coefficients, each with cosine annealing to ``min_lr`` over ``epochs`` when
    ``epochs`` is given (KT runs at a constant rate)."""

    def __init__(self, modules, lr: float, wd: float, spline_lr: float,
                 epochs: Optional[int] = None, min_lr: float = 1e-5):
        spline, other = split_params(modules)
        opts = []
        # foreach: one call per update step for all tensors instead of a dozen small ops per
        # parameter (the LERP-PSA model has 40 small PSA parameters more than the ReLU one).
        # On the CPU it gives bit-identical updates to the default per-parameter loop
        # (tests/test_training_units.py checks); fused=True would be faster still but rounds
        # differently from that loop in the last bit.
        if other:
            opts.append(torch.optim.AdamW(other, lr=lr, weight_decay=wd, foreach=True))
        if spline:
            opts.append(torch.optim.Adam(spline, lr=spline_lr, weight_decay=0.0, foreach=True))
        self._schedule(opts, epochs, min_lr)

    @classmethod
    def of(cls, opts: Sequence[torch.optim.Optimizer], epochs: Optional[int] = None,
           min_lr: float = 1e-5) -> "Optimisers":
        """Optimisers built by the caller (e.g. the QAT groups of ``quant``), with the same
        cosine schedules, state and stepping as the default ones."""
        self = cls.__new__(cls)
        self._schedule(list(opts), epochs, min_lr)
        return self

    def _schedule(self, opts, epochs, min_lr):
        self.opts = opts
        self.scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=min_lr)
                       for o in self.opts] if epochs else []

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad(set_to_none=True)

    def step(self, scaler=None):
        for o in self.opts:
            if scaler is None:
                o.step()
            else:
                scaler.step(o)

    def epoch_end(self):
        for s in self.scheds:
            s.step()

    def state_dict(self):
        return dict(opts=[o.state_dict() for o in self.opts],
                    scheds=[s.state_dict() for s in self.scheds])

    def load_state_dict(self, state):
        if len(state["opts"]) != len(self.opts) or len(state["scheds"]) != len(self.scheds):
            raise UserError("the saved optimiser state does not fit this model; use a new --checkpoint-dir")
        for o, st in zip(self.opts, state["opts"]):
            o.load_state_dict(st)
        for s, st in zip(self.scheds, state["scheds"]):
            s.load_state_dict(st)

    @property
    def lr(self) -> float:
        return self.opts[0].param_groups[0]["lr"] if self.opts else 0.0
