"""The project's one error base class, and its one way of writing a file.

Every problem a user can fix (a wrong flag, a missing or mismatched file, a bad value in a
parameter file) is raised as a subclass of :class:`UserError` whose message is one line that
names the problem and the fix. Each entry point (``cifar10_main.py``, ``cifar10_quant.py``,
``kernel_time_mes.py``, the ``fpga`` commands, the scripts) catches ``UserError`` once,
prints ``<prog>: error: <message>`` and exits with status 2; anything else is a bug and keeps
its traceback. Files are written with :func:`write_atomic`: a reader (or a run that is
killed) never sees a half-written file.
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


def write_atomic(path, write, binary: bool = False) -> str:
    """Write a file so that it is either the old one or the whole new one: ``write(f)`` fills
    a temporary file in the same folder (created if missing), which is flushed, synced, given
    the usual mode (0666 less the umask) and renamed over ``path``; on any error it is removed
    and the error propagates. ``~`` is expanded; returns the absolute path."""
    import os
    import tempfile
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
