"""What the tests that run a page's commands share: the page's ```bash blocks and the
environment a command runs in (this checkout's packages and this interpreter first on PATH, so
that ``python`` in a command is the one running the tests)."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bash_blocks(text):
    """The bodies of the ```bash blocks of ``text``, in order."""
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def python_blocks(text):
    """The bodies of the ```python blocks of ``text``, in order."""
    return re.findall(r"```python\n(.*?)```", text, re.S)


def command_env():
    return dict(os.environ, PYTHONPATH=ROOT,
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
