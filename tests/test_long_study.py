"""The long-schedule study's tools: scripts/run_fashion_mnist_long.sh (its order of models),
experiments.run_record (what a log says of the training) and collect_results.py --long
(evaluation, runs.csv, --check), on small untrained models of the synthetic data set."""
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)

import experiments  # noqa: E402

M = experiments.load()


def test_run_record_sums_every_process_of_a_resumed_run():
    lines = [
        '{"event": "start", "amp": "bf16", "compile": true, "threads": 2}',
        "[KT block 0 epoch 1] MSE: 0.03 (15.0 s)",
        '{"event": "kt_epoch", "block": 0, "epoch": 1, "seconds": 15.0}',
        '{"event": "kt_epoch", "block": 1, "epoch": 1, "seconds": 16.5}',
        '{"event": "start", "amp": "bf16", "compile": true, "threads": 4, "resume": true}',
        '{"event": "epoch", "phase": "kd", "epoch": 1, "seconds": 30.0, "accuracy": 80.0}',
        '{"event": "epoch", "phase": "kd", "epoch": 2, "seconds": 28.5, "accuracy": 81.0}',
        '{"event": "done", "accuracy": 81.0, "seconds": 100.0}',
    ]
    rec = experiments.run_record(lines)
    assert rec == dict(epochs="2 KT + 2", train_minutes=f"{90.0 / 60:.1f}", precision="bf16",
                       compile="True", threads="2/4")
    # a log written before precision was recorded: float32, threads unknown
    old = experiments.run_record(['{"event": "start"}', '{"event": "epoch", "seconds": 60}'])
    assert old == dict(epochs="1", train_minutes="1.0", precision="fp32", compile="False",
                       threads="unknown")


def test_driver_trains_in_the_order_collect_results_lists(tmp_path):
    import collect_results as cr
    env = dict(os.environ, PY=sys.executable, LONG_ROOT=str(tmp_path))
    r = subprocess.run(["bash", os.path.join(SCRIPTS, "run_fashion_mnist_long.sh"), "--list"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    listed = [line.split() for line in r.stdout.splitlines()]
    jobs = cr.long_jobs(str(tmp_path), "fashion-mnist")
    assert len(listed) == len(jobs) == 2 + len(M.activations) * len(M.hs) \
        + len(M.long["priority"]) * len(M.long["seeds"])
    for line, (role, act, h, seed, path, log) in zip(listed, jobs):
        assert line[0] == act and line[2] == str(seed) and line[-1] == "train"
        assert line[1] == ("-" if h is None else experiments.fmt_h(h))
    # the claim's students come first, seed by seed; every student of the table is there
    first = [(j[1], j[2]) for j in jobs[2:2 + len(M.long["priority"])]]
    assert first == list(M.long["priority"])
    assert {(j[1], j[2]) for j in jobs[2:] if j[3] == M.seeds["shipped"]} == \
        {(a.act, h) for a in M.activations for h in M.hs}
    assert not os.listdir(tmp_path), "--list must not write anything"


def test_claim_pairs():
    import collect_results as cr
    pairs = cr.claim_pairs({("psa", 0.25), ("bspline", 0.25), ("base", 0.25), ("base", 0.5)})
    assert pairs == [(("bspline", 0.25), ("base", 0.5)), (("bspline", 0.25), ("base", 0.25)),
                     (("psa", 0.25), ("base", 0.5)), (("psa", 0.25), ("base", 0.25)),
                     (("psa", 0.25), ("bspline", 0.25))]
    assert cr.claim_pairs({("psa", 0.25)}) == []


def _write_model(path, build, seed):
    import torch
    import models
    torch.manual_seed(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    models.save_checkpoint(build(), path)
    with open(path[:-len("_model.bin")] + "_log.txt" if path.endswith("_model.bin")
              else path[:-len(".bin")] + "_log.txt", "w") as f:
        f.write('{"event": "start", "amp": "bf16", "compile": false, "threads": 2}\n'
                '{"event": "epoch", "phase": "kd", "epoch": 1, "seconds": 12.0, "accuracy": 10}\n')


def test_collect_long_writes_and_checks_runs_csv(tmp_path):
    import models
    root = tmp_path / "long"
    model_root = root / "resmlp_layers_4_h_4_embed_96"
    shape = dict(in_channels=3, num_classes=10)
    _write_model(str(root / "resnet20.bin"), lambda: models.build_resnet20(**shape), 1)
    _write_model(str(model_root / M.teacher["file"]),
                 lambda: models.build_resmlp("base", 4.0, **shape), 2)
    assert os.path.isfile(model_root / M.teacher["log"])
    psa = M.activation("psa").folder
    _write_model(str(model_root / psa / "h_div_4_model.bin"),
                 lambda: models.build_resmlp("psa", 0.25, **shape), 3)
    _write_model(str(model_root / "seed_2024" / psa / "h_div_4_model.bin"),
                 lambda: models.build_resmlp("psa", 0.25, **shape), 4)

    def collect(*extra):
        return subprocess.run([sys.executable, os.path.join(SCRIPTS, "collect_results.py"),
                               "--long", "--dataset", "synthetic", "--long-root", str(root),
                               "--no-progress", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    r = collect()
    assert r.returncode == 0, r.stderr
    assert "4 of 22 models trained" in r.stdout
    with open(root / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    assert [(x["role"], x["activation"], x["seed"]) for x in runs] == [
        ("resnet", "resnet20", "2023"), ("teacher", "teacher", "2023"),
        ("student", "psa", "2023"), ("student", "psa", "2024")]
    assert all(x["precision"] == "bf16" and x["train_minutes"] == "0.2" for x in runs)
    with open(model_root / "results.csv") as f:
        assert [row["activation"] for row in csv.DictReader(f)] == ["teacher", "psa"]
    with open(model_root / M.seeds["results"]) as f:
        assert [row["seed"] for row in csv.DictReader(f)] == ["2023", "2024"]

    assert collect("--check").returncode == 0
    # the recorded accuracy differs from the model's: the check fails and names the model
    text = (root / "runs.csv").read_text()
    edited = [dict(x) for x in runs]
    edited[2]["accuracy"] = "0.00" if runs[2]["accuracy"] != "0.00" else "1.00"
    with open(root / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(runs[0]))
        w.writeheader()
        w.writerows(edited)
    r = collect("--check")
    assert r.returncode == 1 and "MISMATCH" in r.stderr and "h_div_4_model.bin" in r.stderr
    (root / "runs.csv").write_text(text)
    # a log that gained an epoch since: the training record differs
    with open(model_root / psa / "h_div_4_log.txt", "a") as f:
        f.write('{"event": "epoch", "phase": "kd", "epoch": 2, "seconds": 60.0}\n')
    r = collect("--check")
    assert r.returncode == 1 and "MISMATCH" in r.stderr
    os.remove(root / "runs.csv")
    r = collect("--check")
    assert r.returncode != 0 and "runs.csv" in r.stderr and r.stderr.count("\n") == 1
