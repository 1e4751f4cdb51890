"""The dataclasses a run is made of, and the single source of every training flag.

:class:`BaseConfig` names the settings that change the result of any run, float or INT8 (the
data, the models, the distillation schedule, the seed); :class:`RunConfig` adds those of float
training (KT, plain training, B-spline regularisation, precision). Every resumable state stores
them and a ``--resume`` must match (:meth:`RunConfig.for_resume_check` leaves out the settings a
run does not use, the plain-training schedule of a KD run, say). :class:`BaseOptions` and
:class:`RunOptions` hold the rest: where files come from and go to, the device, logging.

Each field that is a command-line flag carries its help in its metadata (:func:`flag`); the
default in the help is the field's (argparse's ``%(default)s``), so a default is written once.
``cifar10_main.py`` builds its parser from :data:`GROUPS`; ``cifar10_quant.py`` from the QAT
subclasses in :mod:`training.qat`.

Flag semantics resolved here (docs/METHOD.md section 6): plain training (no ``--do-kd``; after
KT with ``--do-kt``) runs ``--epochs`` epochs if given, else ``--kd-epochs``, with
``--lr``/``--wd`` if given, else ``--kd-lr``/``--kd-wd`` (the authors' script trains plainly
with the KD schedule; its teacher and ResNet command lines rely on it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .cli import (DATASETS, act_metavar, act_type, dataset_type, flag, impl_type, kt_modes,
                  positive_float)


def resmlp_shape(dataset: str) -> Dict[str, int]:
    """``embed_dim`` and ``depth`` of the ResMLP used on ``dataset`` (SVHN: 64 and 2)."""
    import data
    return data.resmlp_shape(dataset)


def _act(role: str, default: str, note: str = "") -> Any:
    return field(default=default, metadata=flag(f"{role} activation{note} (%(default)s)",
                                                type=act_type, metavar=act_metavar))


@dataclass
class BaseConfig:
    """What changes the result of any run (float training or QAT), checked by ``--resume``."""
    # data
    dataset: str = field(default="cifar10", metadata=flag(
        "data set (%(default)s; svhn uses the smaller ResMLP: embed 64, 2 blocks)",
        choices=DATASETS))
    batch_size: int = field(default=128, metadata=flag(
        "training batch size (%(default)s); under torchrun: per process"))
    synthetic_size: int = field(default=4000, metadata=flag(
        "training images of --dataset synthetic (%(default)s; test gets a quarter)"))
    limit_train_batches: int = field(default=0, metadata=flag(
        "stop each epoch after this many batches (%(default)s: all); for smoke tests"))
    # models (a checkpoint defines its own; these describe the ones built from scratch)
    student_nl_act: str = _act("student", "psa")
    student_hidden_factor: float = field(default=4.0, metadata=flag(
        "student hidden size / embed (%(default)s; the paper's students: 2, 1, 0.5, 0.25)",
        type=positive_float))
    student_resnet: bool = field(default=False, metadata=flag(
        "train a ResNet-20 instead of a ResMLP"))
    teacher_nl_act: str = _act("teacher", "base")
    teacher_hidden_factor: float = field(default=4.0, metadata=flag(
        "teacher hidden size / embed (%(default)s)", type=positive_float))
    teacher_resnet: bool = field(default=False, metadata=flag("the teacher is a ResNet-20"))
    grid_size: int = field(default=64, metadata=flag("LERP-PSA grid points (%(default)s)"))
    psa_expansion: int = field(default=8, metadata=flag("PSA experts per feature (%(default)s)"))
    grid_range: float = field(default=4.0, metadata=flag(
        "LERP-PSA grid range R: the grid spans [-R, R] (%(default)s)", type=positive_float))
    spline_size: int = field(default=65, metadata=flag(
        "B-spline coefficients, odd (%(default)s: the paper's 64 intervals)"))
    spline_range: float = field(default=4.0, metadata=flag(
        "B-spline range R: the knots span [-R, R] (%(default)s)", type=positive_float))
    # distillation
    do_kd: bool = field(default=False, metadata=flag("knowledge distillation"))
    kd_epochs: int = field(default=300, metadata=flag(
        "KD epochs (%(default)s); also plain training's unless --epochs"))
    kd_lr: float = field(default=1e-3, metadata=flag(
        "KD AdamW lr (%(default)s); also plain training's unless --lr"))
    kd_wd: float = field(default=0.0, metadata=flag(
        "KD AdamW weight decay (%(default)s); also plain training's unless --wd"))
    kd_t: float = field(default=1.0, metadata=flag("distillation temperature (%(default)s)"))
    kd_alpha: float = field(default=0.8, metadata=flag(
        "weight of the teacher term (%(default)s)"))
    min_lr: float = field(default=1e-5, metadata=flag("cosine annealing floor (%(default)s)"))
    seed: int = field(default=2023, metadata=flag("random seed (%(default)s)"))

    @classmethod
    def from_args(cls, args) -> "BaseConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in vars(args).items() if k in names})

    def uses_teacher(self) -> bool:
        return self.do_kd

    def for_resume_check(self) -> Dict[str, Any]:
        """The settings this run uses, as stored in and compared with a resumable state."""
        d = dataclasses.asdict(self)
        if not self.teacher_resnet and not self.uses_teacher():
            for k in ("teacher_nl_act", "teacher_hidden_factor"):
                d.pop(k)
        for k in ("student_resnet", "teacher_resnet"):
            if not d[k]:
                d.pop(k)   # absent from states written before ResNet-20 existed
        return d


@dataclass
class RunConfig(BaseConfig):
    """Everything that changes the result of a float training run (checked by ``--resume``)."""
    # float training also takes a user's own images (the INT8 path: the built-in sets only)
    dataset: str = field(default="cifar10", metadata=flag(
        "data set (%(default)s; svhn uses the smaller ResMLP: embed 64, 2 blocks); folder:PATH "
        "or npz:FILE: your own images (docs/OWN_DATA.md)", type=dataset_type,
        metavar="{" + ",".join(DATASETS) + ",folder:PATH,npz:FILE}"))
    # knowledge transfer
    do_kt: bool = field(default=False, metadata=flag(
        "block-wise knowledge transfer; without --do-kd, plain training follows with the "
        "embedding and all blocks but the last still frozen (as the authors' script)"))
    kt_mode: str = field(default="authors", metadata=flag(
        "authors (default): their KT loop step for step (whole student in train mode, one "
        "optimiser over all blocks, TV(2) on the whole student); isolated: frozen blocks in "
        "eval mode, a fresh optimiser per block (docs/METHOD.md section 6)", choices=kt_modes))
    kt_epochs: int = field(default=50, metadata=flag("KT epochs per block (%(default)s)"))
    kt_lr: float = field(default=1e-3, metadata=flag("KT AdamW lr (%(default)s)"))
    kt_wd: float = field(default=0.0, metadata=flag("KT AdamW weight decay (%(default)s)"))
    # plain training (None: the KD schedule's)
    epochs: Optional[int] = field(default=None, metadata=flag(
        "epochs of plain training (default: --kd-epochs; after --do-kt without --do-kd, 0 "
        "stops after KT)", type=int))
    lr: Optional[float] = field(default=None, metadata=flag(
        "plain-training AdamW lr (default: --kd-lr)", type=float))
    wd: Optional[float] = field(default=None, metadata=flag(
        "plain-training AdamW weight decay (default: --kd-wd)", type=float))
    # B-spline regularisation, precision, determinism
    bspline_lambda: float = field(default=1e-5, metadata=flag("TV(2) weight (%(default)s)"))
    bspline_lr: float = field(default=1e-3, metadata=flag(
        "Adam lr of spline coefficients (%(default)s)"))
    amp: Optional[str] = field(default=None, metadata=flag(
        "autocast the training forward pass to bfloat16 or float16 (fp16 adds loss scaling); "
        "evaluation stays in float32", choices=("bf16", "fp16")))
    nondeter: bool = field(default=False, metadata=flag(
        "allow non-deterministic algorithms"))

    def uses_teacher(self) -> bool:
        return self.do_kt or self.do_kd

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
        """As :meth:`BaseConfig.for_resume_check`; plain training stores its resolved length
        and optimiser settings under ``epochs``, ``lr``, ``wd``, a run without plain training
        leaves them out, as a run without KT leaves out the KT settings (so states written
        before the flags were resolved still resume)."""
        d = super().for_resume_check()
        if self.plain:
            d.update(epochs=self.plain_epochs, lr=self.plain_lr, wd=self.plain_wd)
        else:
            for k in ("epochs", "lr", "wd"):
                d.pop(k)
        if not self.do_kt:
            for k in ("kt_epochs", "kt_lr", "kt_wd", "kt_mode"):
                d.pop(k)
        if d["amp"] is None:
            d.pop("amp")
        return d


@dataclass
class BaseOptions:
    """What does not change the numbers of any run: files, device, logging."""
    dataset_dir: str = field(default="~/icml_data", metadata=flag(
        "folder of the data set (%(default)s; fashion-mnist falls back to "
        "/usr/share/datasets/fashion-mnist)"))
    download_dataset: bool = field(default=False, metadata=flag(
        "download CIFAR-10 or SVHN into --dataset-dir if missing"))
    test_batch_size: int = field(default=128, metadata=flag("test batch size (%(default)s)"))
    workers: int = field(default=2, metadata=flag(
        "data loader workers for CIFAR-10/SVHN (%(default)s)"))
    teacher_load: Optional[str] = field(default=None, metadata=flag(
        "teacher checkpoint (needed by --do-kt/--do-kd)"))
    load: Optional[str] = field(default=None, metadata=flag(
        "student checkpoint to start from (or to evaluate with --test-only)"))
    save: Optional[str] = field(default=None, metadata=flag(
        "save the final student here (authors' layout, atomic)"))
    impl: str = field(default="auto", metadata=flag(
        "activation kernel implementation: auto, reference, cpu, triton (%(default)s)",
        type=impl_type))
    disable_tqdm: bool = field(default=False, metadata=flag("no progress bars"))
    json_log: Optional[str] = field(default=None, metadata=flag(
        "also append the JSON lines to this file"))
    checkpoint_dir: Optional[str] = field(default=None, metadata=flag(
        "write a resumable training state here after every epoch"))
    resume: bool = field(default=False, metadata=flag(
        "continue the run saved in --checkpoint-dir exactly where it stopped"))
    explicit: frozenset = field(default_factory=frozenset)   # flags given on the command line

    @classmethod
    def from_args(cls, args, explicit=()) -> "BaseOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in vars(args).items() if k in names and k != "explicit"}
        return cls(explicit=frozenset(explicit), **kw)


@dataclass
class RunOptions(BaseOptions):
    """Files, device and logging of a float training or evaluation run."""
    kt_save: Optional[str] = field(default=None, metadata=flag(
        "save the student after KT here"))
    kt_load: Optional[str] = field(default=None, metadata=flag(
        "load a student after KT from here (skips KT)"))
    test_only: bool = field(default=False, metadata=flag(
        "only evaluate (--load or --teacher-load)"))
    compile: bool = field(default=False, metadata=flag(
        "torch.compile the student and teacher for training"))
    no_cuda: bool = field(default=False, metadata=flag(
        "run on the CPU even if CUDA is present"))
    checkpoint_every: int = field(default=1, metadata=flag(
        "with --checkpoint-dir: write the state every N epochs (%(default)s)"))


# The flags of cifar10_main.py beyond the data group, by help group (each a field above).
GROUPS = (
    ("models (a checkpoint given with --load/--teacher-load defines its model; flags given "
     "explicitly are checked against it)",
     ("teacher_load", "teacher_nl_act", "teacher_hidden_factor", "teacher_resnet",
      "student_nl_act", "student_hidden_factor", "student_resnet", "load", "grid_size",
      "grid_range", "spline_size", "spline_range", "psa_expansion", "impl")),
    ("training",
     ("do_kt", "kt_mode", "kt_lr", "kt_wd", "kt_epochs", "kt_save", "kt_load", "do_kd", "kd_lr",
      "kd_wd", "kd_epochs", "kd_t", "kd_alpha", "epochs", "lr", "wd", "min_lr", "bspline_lambda",
      "bspline_lr", "amp", "compile")),
    ("run",
     ("test_only", "save", "seed", "nondeter", "no_cuda", "disable_tqdm", "json_log",
      "checkpoint_dir", "checkpoint_every", "resume")),
)
