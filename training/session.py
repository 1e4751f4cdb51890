"""The resumable training session behind ``--checkpoint-dir``/``--resume``.

One file, ``<dir>/state.pt``, holds everything needed to continue a run exactly: the
student, every optimiser and LR scheduler, the phase (:class:`Phase`: plain training, a KT
block and epoch, KD epoch, end of KT, done), the accuracies so far, every RNG state (python,
numpy, torch CPU and CUDA, the training loader's generator) and the configuration that shapes
the result (:class:`training.config.RunConfig`). It is written to a temporary file, fsynced
and renamed; the previous complete state is kept as ``state.prev.pt`` until then, so a crash
mid-write never leaves only a broken file.

Signals: :func:`install_signal_handlers` only notes SIGINT/SIGTERM; the loops call
:func:`check_stop` at batch boundaries, so an interrupted epoch is abandoned and nothing
half-done is written.
"""
from __future__ import annotations

import enum
import os
import random
import signal
import sys
import tempfile
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from errors import UserError

STATE = "state.pt"
PREVIOUS = "state.prev.pt"
FORMAT = "lerp-psa-repro/run-state/1"


class Phase(str, enum.Enum):
    """Where a run stands. The values are what state files store (unchanged since format 1)."""
    TRAIN = "train"        # plain training, at ``epoch``
    KT = "kt"              # knowledge transfer, block ``kt_block`` at ``epoch``
    KT_DONE = "kt_done"    # after the last KT block
    KD = "kd"              # knowledge distillation, at ``epoch``
    DONE = "done"          # finished

    def describe(self, epoch: int = 0, kt_block: int = 0) -> str:
        if self is Phase.KT:
            return f"KT block {kt_block} epoch {epoch}"
        if self is Phase.KT_DONE:
            return "end of KT"
        if self is Phase.DONE:
            return "end of training"
        return f"{'KD' if self is Phase.KD else 'training'} epoch {epoch}"


class ResumeError(UserError):
    """A state cannot be resumed (one-line message)."""


# --- interruption ---------------------------------------------------------------------------

class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; raised at the next batch boundary."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_STOP: Dict[str, Optional[int]] = {"signum": None}


def _on_signal(signum, _frame):
    # Only note it: the epoch in progress is abandoned at the next batch boundary.
    _STOP["signum"] = signum


def install_signal_handlers():
    """Note SIGINT/SIGTERM instead of dying; returns the previous handlers for restore."""
    _STOP["signum"] = None
    return {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore_signal_handlers(previous) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def stop_signal() -> Optional[int]:
    """The signal that stopped the run, if any."""
    return _STOP["signum"]


def check_stop() -> None:
    if _STOP["signum"] is not None:
        raise Interrupted(_STOP["signum"])


# --- RNG state ------------------------------------------------------------------------------

def rng_state(loader_generator: Optional[torch.Generator]) -> Dict[str, Any]:
    state = dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def restore_rng(state: Dict[str, Any], loader_generator: Optional[torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


# --- the state file -------------------------------------------------------------------------

def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RunCheckpoint:
    """``<folder>/state.pt`` written atomically, with ``state.prev.pt`` as the fallback."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(os.path.expanduser(folder))
        self.path = os.path.join(self.folder, STATE)
        self.prev = os.path.join(self.folder, PREVIOUS)

    def save(self, state: Dict[str, Any]) -> None:
        os.makedirs(self.folder, exist_ok=True)
        state = dict(state, format=FORMAT)
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            if os.path.exists(self.path):
                os.replace(self.path, self.prev)  # the last good state stays until the new one is in place
            os.replace(tmp, self.path)
            _fsync_dir(self.folder)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @staticmethod
    def _read(path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return None
        return state

    def load(self, log: Callable[[str], None] = print) -> Dict[str, Any]:
        """The newest complete state; falls back to the previous one. ``self.fallback`` is
        then the reason (None when ``state.pt`` itself loaded)."""
        self.fallback = None
        for path in (self.path, self.prev):
            if not os.path.exists(path):
                continue
            state = self._read(path)
            if state is not None:
                if path == self.prev:
                    self.fallback = ("missing" if not os.path.exists(self.path)
                                     else "incomplete or corrupt")
                    log(f"warning: {self.path} is {self.fallback}; resuming from the previous "
                        f"state {self.prev} (one save earlier)")
                return state
            log(f"note: {path} is incomplete or corrupt; ignoring it")
        raise ResumeError(f"no complete training state in {self.folder}; start without --resume "
                          "(or point --checkpoint-dir at the folder of the interrupted run)")


def check_same_config(saved: Dict[str, Any], now: Dict[str, Any]) -> None:
    """Refuse to resume when a setting that shapes the result differs (``now`` holds only
    the settings that matter to this run; settings missing on either side are not compared)."""
    for key, old in saved.items():
        if key in now and now[key] != old:
            flag = "--" + key.replace("_", "-")
            raise ResumeError(f"--resume: the saved run used {flag} {old!r} but this command has "
                              f"{now[key]!r}; rerun with the same arguments or use a new --checkpoint-dir")


def describe(state: Dict[str, Any]) -> str:
    """One phrase for where a saved state stands, e.g. 'KT block 2 epoch 7'."""
    return Phase(state.get("phase")).describe(state.get("epoch", 0), state.get("kt_block", 0))


class Session:
    """Where a run stands, and the resumable state it writes (``--checkpoint-dir``).

    ``config`` is the dict of settings that shape the result (stored in every state and
    checked on resume); ``every`` writes a state every N epochs (the last epoch of a
    phase is always written); ``enabled`` is False on ranks other than 0 of a
    multi-process run, which keep the position but write nothing.
    """

    def __init__(self, student, loader_generator, log, *, folder: Optional[str] = None,
                 config: Optional[Dict[str, Any]] = None, every: int = 1, enabled: bool = True):
        self.student, self.gen, self.log = student, loader_generator, log
        self.ckpt = RunCheckpoint(folder) if folder else None
        self.config = dict(config or {})
        self.every = max(1, int(every))
        self.enabled = enabled
        self.resumed: Optional[Dict[str, Any]] = None   # the loaded state, if --resume
        self.last_acc: Optional[float] = None
        self.best_acc: Optional[float] = None
        self.saved_label: Optional[str] = None

    @property
    def phase(self) -> Optional[Phase]:
        """The phase the resumed state was saved in (None for a fresh run)."""
        return Phase(self.resumed["phase"]) if self.resumed else None

    def load(self, state: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Resume from the checkpoint folder (or from ``state``, read elsewhere)."""
        if state is None:
            if self.ckpt is None:
                raise ResumeError("--resume needs --checkpoint-dir DIR (the folder of the interrupted run)")
            state = self.ckpt.load(log=self.log.line)
            if self.ckpt.fallback:
                self.log.json(event="resume_fallback", used=self.ckpt.prev, skipped=self.ckpt.path,
                              reason=self.ckpt.fallback)
        try:
            check_same_config(state["args"], self.config)
        except ResumeError as exc:
            if self.ckpt is None or not self.ckpt.fallback:
                raise
            raise ResumeError(f"{exc} (the previous state {self.ckpt.prev}, used because "
                              f"{self.ckpt.path} is {self.ckpt.fallback})") from None
        self.student.load_state_dict(state["student"])
        restore_rng(state["rng"], self.gen)
        self.last_acc, self.best_acc = state.get("last_acc"), state.get("best_acc")
        self.resumed = state
        self.log.line(f"resuming from {self.ckpt.path if self.ckpt else 'saved state'} ({describe(state)})")
        self.log.json(event="resume", phase=state["phase"], kt_block=state.get("kt_block"),
                      epoch=state.get("epoch"))
        return state

    def position(self, phase: Phase) -> Optional[Tuple[int, int]]:
        """(block, epoch) to continue from in ``phase``, or None if it is not the saved phase."""
        st = self.resumed
        if st is None or st["phase"] != phase.value:
            return None
        return st.get("kt_block", 0), st.get("epoch", 0)

    def saved_optimisers(self, phase: Phase) -> Optional[Dict[str, Any]]:
        """The optimiser state saved in ``phase``, if the run resumes there."""
        if self.position(phase) is None:
            return None
        return self.resumed.get("optimisers")

    def record(self, acc: Optional[float]) -> None:
        if acc is not None:
            self.last_acc = acc
            self.best_acc = acc if self.best_acc is None else max(self.best_acc, acc)

    def save(self, phase: Phase, epoch: int = 0, kt_block: int = 0, opt=None, force: bool = False):
        if not self.ckpt or not self.enabled:
            return
        if not force and epoch % self.every:
            return
        self.ckpt.save(dict(
            phase=phase.value, epoch=epoch, kt_block=kt_block, student=self.student.state_dict(),
            optimisers=opt.state_dict() if opt is not None else None,
            last_acc=self.last_acc, best_acc=self.best_acc, rng=rng_state(self.gen),
            args=dict(self.config), argv=sys.argv[1:]))
        self.saved_label = phase.describe(epoch, kt_block)
        self.log.json(event="state_saved", phase=phase.value, kt_block=kt_block, epoch=epoch,
                      path=self.ckpt.path)
