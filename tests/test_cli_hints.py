"""Every fix a one-line message tells the user to type exists and works.

The checkpoint checks (``models.registry`` settings) end their messages with
"pass <flag> <value>"; each such flag must be an option of ``cifar10_main.py``, and following
the hint must make the refused command work."""
import os
import re
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cifar10_main  # noqa: E402
from models import ACTIVATIONS, build_resmlp, save_checkpoint  # noqa: E402

SYN = ["--dataset", "synthetic", "--synthetic-size", "60", "--test-batch-size", "30",
       "--disable-tqdm"]


def options():
    return {s for a in cifar10_main.build_parser()._actions for s in a.option_strings}


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_setting_flag_of_a_message_is_an_option(act):
    for setting in ACTIVATIONS[act].settings:
        assert setting.flag in options(), f"{act}: messages say '{setting.flag}', which does not exist"


@pytest.mark.parametrize("act,built,flag,value", [
    ("psa", dict(grid_range=8.0), "--grid-range", "4"),
    ("psa", dict(grid_size=32), "--grid-size", "64"),
    ("psa", dict(expansion=4), "--psa-expansion", "8"),
    ("bspline", dict(spline_size=33), "--spline-size", "65"),
])
def test_following_the_hint_of_a_refusal_works(tmp_path, capsys, act, built, flag, value):
    """A checkpoint with a non-default setting, evaluated with the default given explicitly:
    refused with one line ending in 'pass FLAG V'; the same command with that hint runs."""
    torch.manual_seed(0)
    path = tmp_path / "m.bin"
    save_checkpoint(build_resmlp(act, 0.25, **built), str(path))
    args = [*SYN, "--test-only", "--load", str(path), flag, value]
    assert cifar10_main.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    hint = re.search(r"pass (--[a-z-]+) (\S+)$", err[-1])
    assert hint and hint.group(1) == flag, err[-1]
    fixed = list(args)
    fixed[fixed.index(flag) + 1] = hint.group(2)
    assert cifar10_main.main(fixed) == 0, capsys.readouterr().err
    assert '"event": "test"' in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--grid-size", "1"], "--grid-size 1: a LERP-PSA grid needs at least 2 points"),
    (["--spline-size", "64"], "--spline-size 64: a B-spline needs an odd number of coefficients"),
    (["--grid-range", "0"], "argument --grid-range: '0' must be positive"),
])
def test_bad_activation_settings_are_one_line(capsys, args, message):
    try:
        rc = cifar10_main.main([*SYN, "--epochs", "1", *args])
    except SystemExit as exc:          # argparse's own checks exit from the parser
        rc = exc.code
    assert rc == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_an_explicit_backend_that_cannot_run_is_one_line_before_training(tmp_path):
    """--impl cpu without a C compiler: refused at the start with the reason and the way out
    (only --impl auto falls back to the reference path, with a warning)."""
    import subprocess
    env = dict(os.environ, CC="/nonexistent/cc", LERP_CPU_CACHE=str(tmp_path / "cache"))
    base = [sys.executable, os.path.join(ROOT, "cifar10_main.py"), *SYN, "--epochs", "1",
            "--limit-train-batches", "1", "--student-hidden-factor", "0.25"]
    proc = subprocess.run(base + ["--impl", "cpu"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert "impl='cpu' cannot run here" in err[0] and "no C compiler at /nonexistent/cc" in err[0]
    assert '"event": "epoch"' not in proc.stdout
    proc = subprocess.run(base + ["--impl", "auto"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "using the slower reference path" in proc.stderr
