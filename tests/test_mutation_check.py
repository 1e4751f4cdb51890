"""The mutation check (scripts/mutation_check.py) cannot rot silently: every mutation's unit
(function, method, macro, module) must still be in its file, its pattern must match exactly
once inside that unit, and every test it names must exist. Running the mutants themselves stays
out of CI (about 40 minutes); this is the check of seconds."""
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


def test_every_python_mutant_still_compiles():
    # A mutant that is a syntax error would be "killed" by any test: it must be a real bug.
    for m in mc.MUTATIONS:
        if m.path.endswith(".py"):
            with open(os.path.join(ROOT, m.path)) as f:
                compile(mc.apply(f.read(), m), m.path, "exec")


PY = '''\
import functools


def helper():
    return 1


class Table:
    SIZE = 64

    @functools.lru_cache()
    def compute(self, residual):
        x = 1
        return x + 1 if residual else x

    def other(self):
        return x + 1 if residual else x


def outer():
    def inner(a, b):
        return a + b
    return inner
'''


def M(unit, old, new, path="f.py", name="m"):
    return mc.Mutation(name, path, unit, old, new, ("t.py",), "a bug")


def test_a_python_mutation_keys_on_its_function_and_a_pattern_inside_it():
    m = M("Table.compute", "return x + 1 if residual else x", "return x - 1 if residual else x")
    out = mc.apply(PY, m)
    # Only the unit's occurrence changes (the same text in Table.other stays).
    assert out == PY.replace("        return x + 1 if residual else x\n\n    def other",
                             "        return x - 1 if residual else x\n\n    def other")
    # The unit moved within the file and other code changed: the mutation still applies, at
    # the same place in the unit.
    moved = ("import functools\nZ = 3\n\n\n" + PY[PY.index("class Table"):]
             + "\n\ndef helper():\n    return 2\n")
    out = mc.apply(moved, m)
    assert out.count("return x - 1 if residual else x") == 1
    assert out.index("return x - 1") < out.index("def other")
    # The span starts at the decorator; whitespace-insensitive: re-indented and re-wrapped code
    # still matches.
    out = mc.apply(PY, M("Table.compute", "@functools.lru_cache()", "@functools.cache"))
    assert "    @functools.cache\n    def compute" in out
    wrapped = PY.replace("return x + 1 if residual else x\n\n    def other",
                         "return (x + 1\n                if residual else x)\n\n    def other")
    m2 = M("Table.compute", "(x + 1 if residual else x)", "(x - 1 if residual else x)")
    assert "return (x - 1 if residual else x)" in mc.apply(wrapped, m2)
    # nested functions and module/class-level assignments are units too
    assert "a - b" in mc.apply(PY, M("outer.inner", "a + b", "a - b"))
    assert "SIZE = 65" in mc.apply(PY, M("Table.SIZE", "64", "65"))


C = r'''#include <stdint.h>
/* DEFINE_ADD(T) in a comment; add_one( in a comment too */
#define DEFINE_ADD(T)                         \
static T add_##T(T a, T b) {                  \
    return a + b;                             \
}

static int add_one(int a);

static int add_one(int a) {
    if (a) { return a + 1; }
    return a + b;
}

DEFINE_ADD(float)
'''


def test_a_c_mutation_keys_on_a_macro_or_a_function():
    out = mc.apply(C, M("DEFINE_ADD", "return a + b;", "return a - b;", path="k.c"))
    assert "return a - b;                             \\" in out
    assert out.count("return a + b;") == 1    # add_one's is not the macro's
    out = mc.apply(C, M("add_one", "return a + b;", "return a - b;", path="k.c"))
    assert "return a - b;\n}\n\nDEFINE_ADD" in out
    # add_one moved above the macro (its declaration gone): still applies
    macro = C[C.index("#define"):C.index("static int add_one(int a);")]
    moved = C[:C.index("#define")] + C[C.index("static int add_one(int a) {"):] + macro
    out = mc.apply(moved, M("add_one", "a + 1", "a + 2", path="k.c"))
    assert "return a + 2;" in out


V = '''module first #(parameter W = 8) (input clk);
    assign x = y + 1;
endmodule

// module second in a comment
module second (input clk);
    assign x = y + 1;
endmodule
'''


def test_a_verilog_mutation_keys_on_its_module():
    out = mc.apply(V, M("second", "assign x = y + 1;", "assign x = y;", path="r.v"))
    assert out == V[:V.index("module second")] + V[V.index("module second"):].replace("y + 1", "y")


def test_a_mutation_that_no_longer_applies_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "f.py").write_text(PY)
    (tmp_path / "t.py").write_text("")
    muts = [
        # the pattern is in the file, but not in the unit
        M("helper", "return x + 1 if residual else x", "return x", name="not-in-unit"),
        M("Table.gone", "return 1", "return 2", name="no-unit"),
        M("Table", "return x + 1 if residual else x", "return x", name="twice"),
        mc.Mutation("no-test", "f.py", "helper", "return 1", "return 2", ("nope.py",), "bug"),
        M("helper", "return 1", "return 2", path="g.py", name="no-file"),
    ]
    monkeypatch.setattr(mc, "ROOT", str(tmp_path))
    monkeypatch.setattr(mc, "MUTATIONS", muts)
    assert mc.main(["--check"]) == 2
    out, err = capsys.readouterr()
    update = "update MUTATIONS in scripts/mutation_check.py)"
    assert err.strip().splitlines() == [
        "mutation_check.py: error: not-in-unit: the pattern occurs 0 times in helper in f.py "
        f"(the code changed: {update}",
        "mutation_check.py: error: no-unit: Table.gone not found in f.py (renamed or removed: "
        f"{update}",
        "mutation_check.py: error: twice: the pattern occurs 2 times in Table in f.py "
        f"(the code changed: {update}",
        "mutation_check.py: error: no-test: test file nope.py does not exist",
        "mutation_check.py: error: no-file: cannot read g.py (No such file or directory)"]
    assert json.loads(out.strip().splitlines()[-1])["not_applicable"] == 5


def test_a_unit_defined_twice_or_a_file_that_does_not_parse_is_not_applicable():
    with pytest.raises(mc.NotApplicable, match=r"^helper is defined 2 times in f.py"):
        mc.apply(PY + "\n\ndef helper():\n    return 1\n", M("helper", "return 1", "return 2"))
    with pytest.raises(mc.NotApplicable, match=r"^cannot parse f.py \(line 1: "):
        mc.apply("def (:\n", M("helper", "return 1", "return 2"))
    with pytest.raises(mc.NotApplicable, match=r"^absent not found in r.v"):
        mc.apply(V, M("absent", "y + 1", "y", path="r.v"))


def test_names_are_unique_and_each_mutation_changes_its_text():
    names = [m.name for m in mc.MUTATIONS]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="old and new are the same"):
        mc.Mutation("same", "f.py", "f", "a", " a\n", ("t.py",), "no change")


def test_list_names_each_unit():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mutation_check.py"),
                           "--list", "--only", "c-lerp-grad-x-step"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "kernels/csrc/lookup_cpu.c::DEFINE_LERP" in proc.stdout
    assert proc.stdout.count("\n") == 1
