"""Resumable training state for cifar10_main.py (``--checkpoint-dir``/``--resume``).

One file, ``<dir>/state.pt``, holds everything needed to continue a run
exactly: the student, every optimiser and LR scheduler, the phase (plain
training, KT block and epoch, KD epoch), accuracies so far, every RNG state
(python, numpy, torch CPU and CUDA, the training loader's generator) and the
arguments that shape the result. It is written to a temporary file, fsynced
and renamed; the previous complete state is kept as ``state.prev.pt`` until
then, so a crash mid-write never leaves only a broken file.
"""
from __future__ import annotations

import os
import random
import tempfile
from typing import Any, Dict, Optional

import numpy as np
import torch

STATE = "state.pt"
PREVIOUS = "state.prev.pt"
FORMAT = "lerp-psa-repro/run-state/1"

# Arguments that change the result: a resumed run must match them exactly.
RESULT_ARGS = ("dataset", "student_nl_act", "student_hidden_factor", "seed", "epochs", "kt_epochs",
               "kd_epochs", "do_kt", "do_kd", "batch_size", "lr", "wd", "kt_lr", "kt_wd", "kd_lr",
               "kd_wd", "kd_t", "kd_alpha", "min_lr", "bspline_lambda", "bspline_lr", "grid_size",
               "psa_expansion", "synthetic_size", "limit_train_batches", "nondeter",
               "teacher_nl_act", "teacher_hidden_factor")


class ResumeError(RuntimeError):
    """A state cannot be resumed (one-line message)."""


def result_args(args) -> Dict[str, Any]:
    return {k: getattr(args, k) for k in RESULT_ARGS if hasattr(args, k)}


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

    def _read(self, path):
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            return None
        return state

    def load(self, log=print) -> Dict[str, Any]:
        """The newest complete state; falls back to the previous one."""
        for path in (self.path, self.prev):
            if not os.path.exists(path):
                continue
            state = self._read(path)
            if state is not None:
                if path == self.prev:
                    log(f"note: {self.path} is missing or incomplete; resuming from {self.prev}")
                return state
            log(f"note: {path} is incomplete or corrupt; ignoring it")
        raise ResumeError(f"no complete training state in {self.folder}; start without --resume "
                          "(or point --checkpoint-dir at the folder of the interrupted run)")


def check_same_args(saved: Dict[str, Any], args) -> None:
    now = result_args(args)
    for key, old in saved.items():
        if key in now and now[key] != old:
            flag = "--" + key.replace("_", "-")
            raise ResumeError(f"--resume: the saved run used {flag} {old!r} but this command has "
                              f"{now[key]!r}; rerun with the same arguments or use a new --checkpoint-dir")


def describe(state: Dict[str, Any]) -> str:
    phase = state.get("phase")
    if phase == "kt":
        return f"KT block {state['kt_block']} epoch {state['epoch']}"
    if phase == "kt_done":
        return "end of KT"
    if phase == "done":
        return "end of training"
    return f"{'KD' if phase == 'kd' else 'training'} epoch {state['epoch']}"
