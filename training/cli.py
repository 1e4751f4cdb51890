"""What the command lines of ``cifar10_main.py`` and ``cifar10_quant.py`` share: one-line
parser errors, activation names from ``models.registry``, the data flags, and telling the
flags given on the command line apart from defaults."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Callable, Iterable

import data
import errors
from models import UnknownActivationError, canonical_act
from models.registry import metavar

DATASETS = tuple(dict.fromkeys(tuple(data.DATASETS) + ("svhn",)))


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (``prog: error: message (see --help)``)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def act_type(value: str) -> str:
    """An activation name or alias (``models.registry``) -> its name."""
    try:
        return canonical_act(value)
    except UnknownActivationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dataset_type(value: str) -> str:
    """A built-in data set's name, or ``folder:PATH`` / ``npz:FILE`` (the path made
    absolute; whether it holds usable data is checked when it is loaded)."""
    from data import own
    if value in DATASETS:
        return value
    try:
        parsed = own.parse(value)
    except errors.UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if parsed is None:
        raise argparse.ArgumentTypeError(f"unknown dataset {value!r}; use one of "
                                         f"{', '.join(DATASETS)}, folder:PATH or npz:FILE")
    return f"{parsed[0]}:{parsed[1]}"


def act_metavar() -> str:
    return metavar()


def kt_modes() -> tuple:
    """The ``--kt-mode`` names (``training.ablations.KT_LOOPS``)."""
    from .ablations import KT_LOOPS
    return tuple(KT_LOOPS)


def impl_type(value: str) -> str:
    """A kernel implementation name (``kernels.available_impls``)."""
    import kernels
    names = list(kernels.available_impls())
    if value not in names:
        raise argparse.ArgumentTypeError(f"unknown kernel implementation {value!r}; use one of "
                                         f"{', '.join(names)}")
    return value


def positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return v


# The data group's flags, fields of training.config's BaseConfig and BaseOptions.
DATA_FLAGS = ("dataset", "dataset_dir", "download_dataset", "batch_size", "test_batch_size",
              "workers", "synthetic_size", "limit_train_batches")


def add_data_arguments(p: argparse.ArgumentParser, classes, *, workers: bool = True):
    """The ``data`` group: data set, its folder and download, batch sizes, loader workers
    (``workers``), the synthetic set's size and the per-epoch batch limit; defaults and help
    are those of the fields of ``classes`` (:func:`add_field_arguments`)."""
    d = p.add_argument_group("data")
    add_field_arguments(d, classes, (n for n in DATA_FLAGS if workers or n != "workers"))
    return d


def explicit_flags(parser: argparse.ArgumentParser, argv) -> frozenset:
    """The destinations of the flags given on the command line (not left at their default).
    ``parser`` is used up (its defaults are suppressed): pass a fresh one."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv)))


def run_guarded(prog: str, call: Callable[[], object]) -> int:
    """The body of a command line's ``main``: ``call()`` with SIGINT/SIGTERM only noted (the
    loops stop at the next batch, :mod:`training.session`); a :class:`errors.UserError`
    becomes one line ``prog: error: ...`` and exit status 2 (128 + the signal's number when a
    signal stopped the run). Returns the exit status."""
    from .session import install_signal_handlers, restore_signal_handlers, stop_signal
    previous = install_signal_handlers()
    try:
        call()
    except errors.UserError as exc:
        errors.report(prog, exc)
        signum = stop_signal()
        return 128 + signum if signum else 2
    finally:
        restore_signal_handlers(previous)
    return 0


def flag(help: str, **kwargs) -> dict:
    """Metadata that makes a dataclass field a command-line flag ``--field-name``: its help
    (``%(default)s`` in it shows the field's default), and any other ``add_argument`` keyword
    (``type``, ``choices``, ``metavar``; a callable ``choices`` or ``metavar`` is called when
    the parser is built). The default is the field's."""
    return {"flag": dict(help=help, **kwargs)}


def add_field_arguments(group, classes, names: Iterable[str]) -> None:
    """One flag per name, each a field (with :func:`flag` metadata) of the first dataclass in
    ``classes`` that has it: a bool field that defaults to False is a switch, the others take
    a value of their ``type`` (default: the type of the default; ``str`` for None)."""
    fields = {}
    for cls in reversed(tuple(classes)):
        fields.update({f.name: f for f in dataclasses.fields(cls) if "flag" in f.metadata})
    for name in names:
        f = fields[name]
        kw = dict(f.metadata["flag"])
        for key in ("metavar", "choices"):
            if callable(kw.get(key)):
                kw[key] = kw[key]()
        if f.default is False and "type" not in kw:
            kw["action"] = "store_true"
        else:
            kw.setdefault("type", str if f.default is None else type(f.default))
            kw["default"] = f.default
        group.add_argument("--" + name.replace("_", "-"), **kw)


def add_groups(p: argparse.ArgumentParser, classes, groups) -> None:
    """One argument group per ``(title, field names)`` of ``groups``."""
    for title, names in groups:
        add_field_arguments(p.add_argument_group(title), classes, names)
