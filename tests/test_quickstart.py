"""scripts/quickstart.sh --retrain: it trains into a fresh folder, never the shipped one, and
its side-by-side table (collect_results.py --side-by-side) marks a difference beyond the seed
spread."""
import csv
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "output", "fashion_mnist", "resmlp_layers_4_h_4_embed_96")


def run(*cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_retrain_refuses_the_shipped_folder_and_bad_arguments():
    r = run("bash", "scripts/quickstart.sh", "--retrain", "--out", "output/fashion_mnist")
    assert r.returncode == 2 and "is the shipped folder; pick another" in r.stderr, r.stderr
    r = run("bash", "scripts/quickstart.sh", "--retrain", "--out")
    assert r.returncode == 2 and "use --retrain or --retrain --out DIR" in r.stderr, r.stderr


def test_side_by_side_prints_both_tables_and_flags_a_real_difference(tmp_path):
    rows = list(csv.DictReader(open(os.path.join(SHIPPED, "results.csv"))))
    changed = dict(rows[-1])
    changed["accuracy"] = f"{float(changed['accuracy']) - 2.0:.2f}"
    with open(tmp_path / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:-1] + [changed])
    r = run(sys.executable, "scripts/collect_results.py", "--model-root", str(tmp_path),
            "--side-by-side", SHIPPED)
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    students = [row for row in rows if row["activation"] != "teacher"]
    assert len(table) == 1 + len(students)
    flagged = [line for line in table if line.rstrip().endswith("| yes |")]
    assert len(flagged) == 1 and "| +2.00 |" in flagged[0] and changed["accuracy"] in flagged[0]
    assert all("| +0.00 |" in line for line in table[1:] if line not in flagged)
    # a folder without its results.csv: one line, status 2
    shutil.rmtree(tmp_path)
    r = run(sys.executable, "scripts/collect_results.py", "--model-root", str(tmp_path),
            "--side-by-side", SHIPPED)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "missing" in r.stderr
