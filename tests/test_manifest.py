"""The experiment manifest (scripts/experiments.toml) and the tools that read it.

Fast checks only (no model is evaluated here): the shell view of the manifest, the JSON-line
reader the drivers use instead of grepping human output, every driver's --help and its
missing-checkpoint message, the seed statistics against Python's ``statistics``, and that the
README's copy of the paper's table agrees with the manifest.
"""
import csv
import math
import os
import re
import statistics
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)

import experiments  # noqa: E402

M = experiments.load()
DRIVERS = sorted(f for f in os.listdir(SCRIPTS)
                 if re.match(r"run_(eval|compressed|svhn)_.*\.sh$|run_fashion_mnist_.*\.sh$"
                          r"|run_(resnet|resmlp_teacher)\.sh$", f))


def bash(script, env=None):
    e = dict(os.environ, PY=sys.executable, **(env or {}))
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=120)


def test_manifest_names_the_authors_layout():
    assert [a.act for a in M.activations] == ["base", "bspline", "psa"]
    assert {a.act: a.folder for a in M.activations} == {
        "base": "baseline", "bspline": "bspline_65_1e-5", "psa": "lerp_psa_64"}
    assert [(x.h, x.stem) for x in M.hidden] == [
        (2.0, "h_mul_2"), (1.0, "h_mul_1"), (0.5, "h_div_2"), (0.25, "h_div_4")]
    root = "/r"
    assert M.checkpoint(root, "psa", 0.25) == "/r/lerp_psa_64/h_div_4_model.bin"
    assert M.checkpoint(root, "psa", 0.25, M.seeds["shipped"]) == "/r/lerp_psa_64/h_div_4_model.bin"
    assert M.checkpoint(root, "base", 0.5, 2024) == "/r/seed_2024/baseline/h_div_2_model.bin"
    assert M.model_root("fashion-mnist", "/x") == "/x/output/fashion_mnist/resmlp_layers_4_h_4_embed_96"
    assert M.model_root("svhn", "/x") == "/x/output/svhn/resmlp_layers_2_h_4_embed_64"
    with pytest.raises(experiments.ManifestError, match="unknown hidden factor"):
        M.stem(3)
    with pytest.raises(experiments.ManifestError, match="unknown activation"):
        M.activation("gelu")


def test_shell_view_matches_the_manifest():
    r = bash('DATASET=fashion-mnist; set -- ; source scripts/common.sh; '
             'for h in "${H_VALUES[@]}"; do echo "$h $(h_stem "$h")"; done; '
             'for a in "${ACTS[@]}"; do echo "$a $(act_folder "$a") ${ACT_LABEL[$a]}"; done; '
             'echo "$MODEL_ROOT $TEACHER_MODEL $SEED_SHIPPED ${SEEDS_EXTRA[*]} ${SEED_H_VALUES[*]}"; '
             'h_stem 3 || echo "rc=$?"')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == [f"{experiments.fmt_h(x.h)} {x.stem}" for x in M.hidden]
    assert lines[4:7] == [f"{a.act} {a.folder} {a.label}" for a in M.activations]
    root = "./output/fashion_mnist/resmlp_layers_4_h_4_embed_96"
    assert lines[7] == f"{root} {root}/teacher_model.bin 2023 2024 2025 0.5 0.25"
    assert lines[8] == "rc=1" and "unknown hidden factor 3" in r.stderr


def test_accuracy_comes_from_json_lines_not_human_text():
    lines = ["[1] Accuracy: 11.00 (phase kd)", '{"event": "epoch", "accuracy": 12.5}',
             "not json {", '{"event": "done", "accuracy": 85.11, "save": "x"}',
             "[final] Accuracy: 99.99"]
    assert experiments.last_accuracy(lines) == 85.11
    assert experiments.last_accuracy(lines, ("epoch",)) == 12.5
    with pytest.raises(experiments.ManifestError, match="no JSON line"):
        experiments.last_accuracy(lines[:1])
    r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "experiments.py"), "accuracy",
                        "--event", "test"], input='{"event": "test", "accuracy": 84.6}\n',
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "84.60"
    r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "experiments.py"), "accuracy",
                        "/nonexistent/log.txt"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read" in r.stderr


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_driver_help_says_what_it_runs_and_where_it_writes(driver):
    r = bash(f"./scripts/{driver} --help")
    assert r.returncode == 0, r.stderr
    assert "Runs:" in r.stdout and ("Writes:" in r.stdout or "writes nothing" in r.stdout)
    assert "output/" in r.stdout and "#" not in r.stdout.splitlines()[0]


@pytest.mark.parametrize("driver", ["run_eval_lerp_psa.sh", "run_compressed_bspline.sh"])
def test_missing_checkpoints_are_named_by_full_path(driver, tmp_path):
    r = bash(f"./scripts/{driver}", env={"MODEL_ROOT": str(tmp_path), "DATASET": "fashion-mnist"})
    assert r.returncode == 1
    missing = [line for line in r.stderr.splitlines() if line.startswith("missing checkpoint: ")]
    assert missing and all(line.split(": ", 1)[1].startswith(str(tmp_path)) for line in missing)
    if "eval" in driver:
        assert len(missing) == 4 and missing[0].endswith("/lerp_psa_64/h_mul_2_model.bin")
    else:
        assert missing == [f"missing checkpoint: {tmp_path}/teacher_model.bin"]


def test_seed_statistics_and_differences():
    import collect_results as cr
    rows = []
    vals = {("base", 0.5): [84.6, 84.2, 84.4], ("bspline", 0.5): [85.46, 85.0, 85.2],
            ("psa", 0.5): [85.04, 84.9, 85.3], ("base", 0.25): [83.3, 83.0, 83.9],
            ("bspline", 0.25): [84.34, 84.1, 84.0], ("psa", 0.25): [85.11, 85.0, 85.2]}
    for (a, h), xs in vals.items():
        for s, x in zip((2023, 2024, 2025), xs):
            rows.append((a, h, s, f"{x:.2f}"))
    st = cr.seed_stats(rows)
    for key, xs in vals.items():
        mean, std, n, got = st[key]
        assert n == 3 and got == xs
        assert math.isclose(mean, statistics.mean(xs)) and math.isclose(std, statistics.stdev(xs))
    text = cr.seed_table(rows)
    # psa vs base at h = 0.25: d = 1.0333, se = sqrt((0.0100 + 0.2100) / 3) = 0.2708 -> yes
    line = next(x for x in text.splitlines() if x.startswith("| LERP-PSA (64) h = 0.25 | Baseline (ReLU) h = 0.25"))
    d = statistics.mean(vals[("psa", 0.25)]) - statistics.mean(vals[("base", 0.25)])
    se = math.sqrt(statistics.variance(vals[("psa", 0.25)]) / 3 + statistics.variance(vals[("base", 0.25)]) / 3)
    assert f"| {d:+.2f} | {se:.2f} |" in line and "| yes |" in line
    # psa vs bspline at h = 0.5: well inside the noise
    line = next(x for x in text.splitlines() if x.startswith("| LERP-PSA (64) h = 0.5 | B-Spline"))
    assert line.endswith("| no | no |")


def test_seed_csv_round_trip(tmp_path):
    import collect_results as cr
    rows = [("base", 0.5, 2023, "84.60"), ("psa", 0.25, 2025, "85.11")]
    path = str(tmp_path / "results_seeds.csv")
    cr.write_seeds_csv(path, rows)
    with open(path) as f:
        assert list(csv.reader(f)) == [["activation", "hidden_factor", "seed", "accuracy"],
                                       ["base", "0.5", "2023", "84.60"], ["psa", "0.25", "2025", "85.11"]]
    assert cr.read_seeds_csv(path) == rows
    assert not os.path.exists(path + ".tmp")


def test_readme_paper_table_is_the_manifests():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    for a in M.activations:
        row = f"| {a.label} | " + " | ".join(f"{v:.1f}" for v in a.paper) + " |"
        assert row in text, f"README's paper row for {a.act} differs from scripts/experiments.toml"
    assert f"Teacher (ReLU, h = 4): {M.teacher['paper']:.1f} %" in text


def test_ablations_are_named_once():
    abl = M.ablation("kt_isolated")
    assert (abl.folder, abl.args) == ("ablation_kt_isolated", "--kt-mode isolated")
    with pytest.raises(experiments.ManifestError, match="unknown ablation 'nope'"):
        M.ablation("nope")
    r = bash('DATASET=fashion-mnist; set -- ; source scripts/common.sh; '
             'echo "${ABLATION_FOLDER[kt_isolated]}|${ABLATION_ARGS[kt_isolated]}"')
    assert r.returncode == 0 and r.stdout.strip() == "ablation_kt_isolated|--kt-mode isolated", r.stderr
    r = bash("./scripts/run_fashion_mnist_ablation.sh nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "kt_isolated" in r.stderr


def test_recipe_comparison_table():
    import collect_results as cr
    a = {("base", 0.5): [84.6, 84.2, 84.4], ("psa", 0.25): [85.11, 85.0, 85.2]}
    b = {("base", 0.5): [84.5, 84.3, 84.1], ("psa", 0.25): [84.0, 84.2, 84.1]}
    rows = lambda v: [(act, h, s, f"{x:.2f}") for act in ("base", "bspline", "psa")
                      for h in (0.5, 0.25) for s, x in zip((2023, 2024, 2025),
                                                           v.get((act, h), [80.0, 80.5, 81.0]))]
    text = cr.compare_table(rows(a), rows(b), "A", "B")
    line = next(x for x in text.splitlines() if x.startswith("| LERP-PSA (64) | 0.25 |"))
    xa, xb = a[("psa", 0.25)], b[("psa", 0.25)]
    d = statistics.mean(xa) - statistics.mean(xb)
    se = math.sqrt(statistics.variance(xa) / 3 + statistics.variance(xb) / 3)
    sd = math.sqrt(statistics.variance(xa) + statistics.variance(xb))
    assert f"| {d:+.2f} | {se:.2f} | {sd:.2f} | yes | yes |" in line, line
    line = next(x for x in text.splitlines() if x.startswith("| Baseline (ReLU) | 0.5 |"))
    assert line.endswith("| no | no |")
    assert "\\|d\\| > 2 se" in text          # escaped: a Markdown table cell, not a column break


def test_int8_models_point_at_their_float_parents():
    """results_int8.csv names each INT8 model's float parent; it exists and its accuracy is the
    one of the parent's results.csv (the INT8 models come from the isolated-KT students)."""
    sys.path.insert(0, SCRIPTS)
    import collect_int8_results as ci
    root = M.model_root("fashion-mnist")
    with open(os.path.join(root, "results_int8.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [(r["activation"], float(r["hidden_factor"])) for r in rows] == \
        [(a, float(h)) for a, h in M.int8["models"]]
    parent = os.path.join(root, M.int8["parent"])
    with open(os.path.join(parent, "results.csv")) as f:
        floats = {(r["activation"], float(r["hidden_factor"])): r["accuracy"] for r in csv.DictReader(f)}
    for r in rows:
        path = os.path.join(root, r["float_parent"])
        assert os.path.isfile(path), path
        assert r["float_parent"] == ci.float_parent(root, r["activation"], r["hidden_factor"])
        assert r["float_accuracy"] == floats[(r["activation"], float(r["hidden_factor"]))]
        assert os.path.isdir(ci.dump_dir(root, r["activation"], r["hidden_factor"]))
