"""Training and evaluation of the ResMLP (and ResNet-20) models; ``cifar10_main.py`` is
its command line.

* :mod:`training.config`    -- ``RunConfig`` (every setting that changes a result) and ``RunOptions``
* :mod:`training.loops`     -- ``train_plain``, ``knowledge_transfer``, ``knowledge_distillation``,
  ``distillation_loss``
* :mod:`training.evaluate`  -- ``evaluate(model, loader, device)``
* :mod:`training.session`   -- the resumable state (``Session``, ``Phase``), signals
* :mod:`training.nonfinite` -- naming the first layer that received NaN/inf
* :mod:`training.optim`     -- AdamW + Adam for spline coefficients, cosine schedules
* :mod:`training.setup`     -- seeding, loaders, model building, the logger
* :mod:`training.distributed` -- torchrun / DistributedDataParallel
* :mod:`training.run`       -- one run from a ``RunConfig`` and ``RunOptions``
* :mod:`training.qat`       -- quantisation-aware training of the INT8 model through the same
  loops and sessions (``cifar10_quant.py``): ``QATConfig``, ``QATOptions``, ``run_qat``
* :mod:`training.cli`       -- what the two command lines share (one-line parser errors,
  activation names, the data flags, explicit flags)
"""
from .config import RunConfig, RunOptions, resmlp_shape
from .evaluate import evaluate
from .loops import Loop, distillation_loss, knowledge_distillation, knowledge_transfer, train_plain
from .nonfinite import NonFiniteTrainingError, first_nonfinite_layer
from .optim import Optimisers
from .session import Phase, ResumeError, RunCheckpoint, Session
from .run import CLIError, run
from .qat import QATConfig, QATOptions, run_qat

__all__ = ["RunConfig", "RunOptions", "resmlp_shape", "evaluate", "Loop", "distillation_loss",
           "knowledge_distillation", "knowledge_transfer", "train_plain", "NonFiniteTrainingError",
           "first_nonfinite_layer", "Optimisers", "Phase", "ResumeError", "RunCheckpoint",
           "Session", "CLIError", "run", "QATConfig", "QATOptions", "run_qat"]
