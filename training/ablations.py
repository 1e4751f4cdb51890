"""Training variants kept only to measure a recipe detail against the authors' (the
``[ablation.*]`` entries of scripts/experiments.toml; docs/TRAINING.md).

* :func:`knowledge_transfer_isolated` -- our earlier knowledge transfer (``--kt-mode isolated``,
  the ``kt_isolated`` ablation): each block trained on its own.

``KT_LOOPS`` maps ``--kt-mode`` to the KT function.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .loops import (Loop, _upcast, knowledge_transfer, kt_block_epochs, kt_start,
                    teacher_tokens, unfreeze)
from .optim import Optimisers
from .session import Phase


def knowledge_transfer_isolated(student: nn.Module, teacher: nn.Module, train, loop: Loop, *,
                                epochs: int, lr: float, wd: float = 0.0, spline_lr: float = 1e-3,
                                bspline_lambda: float = 0.0) -> None:
    """KT block by block as :func:`training.loops.knowledge_transfer`, each block isolated: the
    frozen embedding and blocks < b run in eval mode (fixed BatchNorm statistics) and without a
    gradient, a fresh optimiser per block covers that block only (so TV(2) gradients reach no
    other block). Everything is unfrozen on return."""
    session = loop.session
    pos = kt_start(student, teacher, session)
    for b in range(pos[0], len(student.layers)):
        for p in student.parameters():
            p.requires_grad_(False)
        for p in student.layers[b].parameters():
            p.requires_grad_(True)
        opt = Optimisers([student.layers[b]], lr, wd, spline_lr)
        if b == pos[0] and pos[1]:
            saved = session.saved_optimisers(Phase.KT)
            if saved:
                opt.load_state_dict(saved)
        net = loop.wrap(student.layers[b])

        def loss_fn(x, _y, net=net, b=b):
            with torch.no_grad():
                # The frozen part of the student runs in eval mode: its BN statistics stay fixed.
                inp = student.layers[:b](student.embed_linear(student.patchify(x)))
            return F.mse_loss(_upcast(net(inp)), _upcast(teacher_tokens(teacher, x, b)))

        def modes(b=b):
            student.eval()
            student.layers[b].train()

        kt_block_epochs(student, b, pos[1] + 1 if b == pos[0] else 1, train, opt, loss_fn, loop,
                        epochs=epochs, bspline_lambda=bspline_lambda, modes=modes)
    unfreeze(student)


KT_LOOPS = {"authors": knowledge_transfer, "isolated": knowledge_transfer_isolated}
