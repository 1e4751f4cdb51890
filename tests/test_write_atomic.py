"""errors.write_atomic, the one way the project writes a file: the old file or the whole new
one, never a half-written file, nothing left behind on failure, the usual file mode."""
import os
import stat

import pytest

from errors import write_atomic


def test_writes_text_and_bytes_with_the_usual_mode(tmp_path):
    p = tmp_path / "sub" / "a.txt"                       # the folder is created
    assert write_atomic(p, lambda f: f.write("hello\n")) == str(p)
    assert p.read_text() == "hello\n"
    write_atomic(p, lambda f: f.write(b"\x00\x01"), binary=True)
    assert p.read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~umask
    assert os.listdir(p.parent) == ["a.txt"]


def test_a_failing_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def half(f):
        f.write("new, but")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(p, half)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert write_atomic("~/b.txt", lambda f: f.write("x")) == str(tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_text() == "x"
