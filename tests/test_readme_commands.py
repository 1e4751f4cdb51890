"""README.md's commands run as written and chain: every command of its ```bash blocks, in order,
in a scratch folder that holds the checkout's files (so the shipped teacher is there and
``runs/`` is written there), at smoke scale: training and QAT limited to 2 batches an epoch,
the kernel timing on a small input, the Verilog simulation on 2 images. The Python blocks run
too. A command that cannot run here is listed in SKIP with the reason; any other command a
README change adds must run, so a renamed flag or a broken chain fails CI."""
import os
import re
import subprocess
import sys


from tests.doc_blocks import bash_blocks, command_env, python_blocks
from tests.oracles import need_program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# prefix of a command -> why it is not run here
SKIP = {
    "./scripts/quickstart.sh": "the whole evaluation (CI checks its parts: test_shipped_results, "
                               "test_quickstart, test_long_study)",
    "./scripts/test.sh": "the test suite itself",
    "./scripts/run_eval_lerp_psa.sh": "needs CIFAR-10 and the authors' archive (not reachable here)",
    "python cifar10_main.py --test-only --load output/cifar10/": "needs CIFAR-10 and the authors' "
                                                                 "archive",
    "./scripts/gpu_selftest.sh": "needs a CUDA GPU",
}

# (pattern in a command, replacement) applied to every command that runs: smoke scale
SMOKE = [
    (re.compile(r"^(python cifar10_main\.py .*)$"), r"\1 --limit-train-batches 2"),
    (re.compile(r"^(python cifar10_quant\.py .*)$"), r"\1 --limit-train-batches 2 --dump-samples 256"),
    (re.compile(r"^(python kernel_time_mes\.py \S+)(.*)$"),
     r"\1\2 --device cpu --tokens 64 --features 32 --layers 1 --steps 1 --repeats 1 --warmup 0"),
    (re.compile(r"--images 64"), "--images 2"),
]


def commands(text):
    """The commands of the ```bash blocks of ``text`` in order (continuations joined, comments
    and blank lines dropped), and the ```python blocks."""
    cmds = []
    for block in bash_blocks(text):
        block = re.sub(r"\\\n\s*", "", block)
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds, python_blocks(text)


def skipped(cmd):
    return next((reason for prefix, reason in SKIP.items() if cmd.startswith(prefix)), None)


def smoke(cmd):
    for pattern, repl in SMOKE:
        cmd = pattern.sub(repl, cmd)
    return cmd


def scratch(tmp_path):
    """A folder with every top-level entry of the checkout linked in, except runs/."""
    for name in os.listdir(ROOT):
        if name not in ("runs", ".git"):
            os.symlink(os.path.join(ROOT, name), tmp_path / name)
    return command_env()


def test_the_readme_commands_are_all_accounted_for():
    cmds, pys = commands(open(os.path.join(ROOT, "README.md")).read())
    assert len(pys) >= 2
    ran = [c for c in cmds if not skipped(c)]
    assert any("cifar10_main.py" in c for c in ran) and any("cifar10_quant.py" in c for c in ran)
    # each SKIP entry still matches a command (a stale entry would hide nothing)
    for prefix in SKIP:
        assert any(c.startswith(prefix) for c in cmds), f"SKIP entry {prefix!r} matches nothing"


def test_the_readme_commands_run_and_chain(tmp_path):
    need_program("verilator", "apt-get install -y verilator")
    env = scratch(tmp_path)
    cmds, pys = commands(open(os.path.join(ROOT, "README.md")).read())
    # the Python blocks in one session, in order, as a reader pastes them
    code = "\n".join(pys)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{code}\n{proc.stderr}"
    for cmd in cmds:
        if skipped(cmd):
            continue
        run = smoke(cmd)
        proc = subprocess.run(["bash", "-e", "-c", run], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, f"{run}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    # the chain: training wrote the student QAT read, QAT wrote the dump the simulators read
    runs = tmp_path / "runs"
    assert (runs / "psa_h1.bin").is_file() and (runs / "psa_h1_quant.bin").is_file()
    assert (runs / "psa_h1_int8" / "quant_params.npz").is_file()
