"""The mutation check (scripts/mutation_check.py) cannot rot silently: every mutation's text
must still occur exactly once in its file and every test it names must exist. Running the
mutants themselves stays out of CI (about 40 minutes); this is the check of seconds."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import mutation_check as mc  # noqa: E402


def test_every_mutation_applies_to_the_tree():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mutation_check.py"),
                           "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.strip()
    assert proc.stdout.startswith(f"all {len(mc.MUTATIONS)} mutations apply")


def test_a_mutation_that_moved_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "f.py").write_text("x = 1\n")
    (tmp_path / "t.py").write_text("")
    gone = mc.Mutation("gone", "f.py", "x = 2", "x = 3", ("t.py",), "moved away")
    twice = mc.Mutation("twice", "f.py", "1", "2", ("t.py",), "not unique")
    no_test = mc.Mutation("no-test", "f.py", "x = 1", "x = 2", ("nope.py",), "test file missing")
    monkeypatch.setattr(mc, "ROOT", str(tmp_path))
    (tmp_path / "f.py").write_text("x = 1  # 1\n")
    monkeypatch.setattr(mc, "MUTATIONS", [gone, twice, no_test])
    assert mc.main(["--check"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines == [
        "mutation_check.py: error: gone: the text to replace occurs 0 times in f.py (the code "
        "moved: update MUTATIONS in scripts/mutation_check.py)",
        "mutation_check.py: error: twice: the text to replace occurs 2 times in f.py (the code "
        "moved: update MUTATIONS in scripts/mutation_check.py)",
        "mutation_check.py: error: no-test: test file nope.py does not exist"]
    assert json.loads(out.strip().splitlines()[-1])["not_applicable"] == 3


def test_names_are_unique_and_each_mutation_changes_its_text():
    names = [m.name for m in mc.MUTATIONS]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="old and new are the same"):
        mc.Mutation("same", "f.py", "a", "a", ("t.py",), "no change")
