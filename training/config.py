"""The two dataclasses a run is made of.

:class:`RunConfig` names every setting that changes the result of a run (the data, the
models, the schedule, the seed). It is stored in every resumable state and a ``--resume``
must match it; :meth:`RunConfig.for_resume_check` leaves out the settings a run does not use
(the plain-training schedule of a KD run, say). :class:`RunOptions` holds the rest: where
files come from and go to, the device, logging.

Flag semantics resolved here (docs/METHOD.md section 6): plain training (no ``--do-kd``; after
KT with ``--do-kt``) runs ``--epochs`` epochs if given, else ``--kd-epochs``, with
``--lr``/``--wd`` if given, else ``--kd-lr``/``--kd-wd`` (the authors' script trains plainly
with the KD schedule; its teacher and ResNet command lines rely on it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

def resmlp_shape(dataset: str) -> Dict[str, int]:
    """``embed_dim`` and ``depth`` of the ResMLP used on ``dataset`` (SVHN: 64 and 2)."""
    import data
    return data.resmlp_shape(dataset)


@dataclass
class RunConfig:
    """Everything that changes the result of a run (checked by ``--resume``)."""
    dataset: str = "cifar10"
    # models
    student_nl_act: str = "psa"
    student_hidden_factor: float = 4.0
    student_resnet: bool = False
    teacher_nl_act: str = "base"
    teacher_hidden_factor: float = 4.0
    teacher_resnet: bool = False
    grid_size: int = 64
    psa_expansion: int = 8
    grid_range: float = 4.0          # LERP-PSA grid over [-R, R]
    spline_size: int = 65            # B-spline coefficients
    spline_range: float = 4.0        # B-spline knots over [-R, R]
    # schedule
    do_kt: bool = False
    kt_mode: str = "authors"         # "authors" (their loop, step for step) or "isolated"
    kt_epochs: int = 50
    kt_lr: float = 1e-3
    kt_wd: float = 0.0
    do_kd: bool = False
    kd_epochs: int = 300
    kd_lr: float = 1e-3
    kd_wd: float = 0.0
    kd_t: float = 1.0
    kd_alpha: float = 0.8
    epochs: Optional[int] = None     # plain training; None: kd_epochs
    lr: Optional[float] = None       # plain training; None: kd_lr
    wd: Optional[float] = None       # plain training; None: kd_wd
    min_lr: float = 1e-5
    bspline_lambda: float = 1e-5
    bspline_lr: float = 1e-3
    batch_size: int = 128
    seed: int = 2023
    nondeter: bool = False
    amp: Optional[str] = None        # None, "bf16" or "fp16"
    synthetic_size: int = 4000
    limit_train_batches: int = 0

    @classmethod
    def from_args(cls, args) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})

    # --- resolved plain-training settings ----------------------------------------------
    @property
    def plain(self) -> bool:
        """True when this run trains plainly: no KD (after KT, if ``--do-kt``, as the
        authors' script: ``--do-kt`` without ``--do-kd`` is KT, then plain training)."""
        return not self.do_kd

    @property
    def plain_epochs(self) -> int:
        return self.kd_epochs if self.epochs is None else self.epochs

    @property
    def plain_lr(self) -> float:
        return self.kd_lr if self.lr is None else self.lr

    @property
    def plain_wd(self) -> float:
        return self.kd_wd if self.wd is None else self.wd

    def for_resume_check(self) -> Dict[str, Any]:
        """The settings this run uses, as stored in and compared with a resumable state.

        Plain training stores its resolved length and optimiser settings under ``epochs``,
        ``lr``, ``wd``; a run without plain training leaves them out, as a run without KT
        leaves out the KT settings (so states written before the flags were resolved
        still resume)."""
        d = dataclasses.asdict(self)
        if self.plain:
            d.update(epochs=self.plain_epochs, lr=self.plain_lr, wd=self.plain_wd)
        else:
            for k in ("epochs", "lr", "wd"):
                d.pop(k)
        if not self.do_kt:
            for k in ("kt_epochs", "kt_lr", "kt_wd", "kt_mode"):
                d.pop(k)
        if not self.teacher_resnet and not (self.do_kt or self.do_kd):
            for k in ("teacher_nl_act", "teacher_hidden_factor"):
                d.pop(k)
        for k in ("student_resnet", "teacher_resnet"):
            if not d[k]:
                d.pop(k)   # absent from states written before ResNet-20 existed
        if d["amp"] is None:
            d.pop("amp")
        return d


@dataclass
class RunOptions:
    """Everything else: files, device, logging (none of it changes the numbers)."""
    dataset_dir: str = "~/icml_data"
    download_dataset: bool = False
    test_batch_size: int = 128
    workers: int = 2
    teacher_load: Optional[str] = None
    load: Optional[str] = None
    kt_load: Optional[str] = None
    kt_save: Optional[str] = None
    save: Optional[str] = None
    test_only: bool = False
    impl: str = "auto"
    no_cuda: bool = False
    disable_tqdm: bool = False
    json_log: Optional[str] = None
    checkpoint_dir: Optional[str] = None
    checkpoint_every: int = 1
    resume: bool = False
    compile: bool = False
    explicit: frozenset = field(default_factory=frozenset)   # flags given on the command line

    @classmethod
    def from_args(cls, args, explicit=()) -> "RunOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in vars(args).items() if k in names and k != "explicit"}
        return cls(explicit=frozenset(explicit), **kw)
