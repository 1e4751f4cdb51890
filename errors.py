"""The project's one error base class.

Every problem a user can fix (a wrong flag, a missing or mismatched file, a bad value in a
parameter file) is raised as a subclass of :class:`UserError` whose message is one line that
names the problem and the fix. Each entry point (``cifar10_main.py``, ``cifar10_quant.py``,
``kernel_time_mes.py``, the ``fpga`` commands, the scripts) catches ``UserError`` once,
prints ``<prog>: error: <message>`` and exits with status 2; anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations

import sys


class UserError(Exception):
    """A problem the user can fix, reported as one line (no traceback)."""


def report(prog: str, exc: BaseException, file=None) -> int:
    """Print ``prog: error: message`` on one line and return the exit status 2."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: error: {msg}", file=file or sys.stderr)
    return 2


def require_files(namespace, names, error=UserError) -> None:
    """Raise ``error`` for the first flag among ``names`` (attribute names of ``namespace``, an
    argparse result) that names a file which does not exist: ``--flag-name file not found:
    /absolute/path``. Unset flags are skipped; ``~`` is expanded."""
    import os
    for name in names:
        path = getattr(namespace, name)
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise error(f"--{name.replace('_', '-')} file not found: "
                        f"{os.path.abspath(os.path.expanduser(path))}")
