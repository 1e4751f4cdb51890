"""The authors' teacher chain and SVHN through cifar10_main.py, on tiny synthetic data:
ResNet-20 trained plainly, the ResMLP distilled from it (--teacher-resnet or from the file
alone), the SVHN ResMLP (embed 64, 2 blocks), and their one-line errors."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cifar10_main  # noqa: E402
import models  # noqa: E402

TINY = ["--synthetic-size", "200", "--batch-size", "25", "--disable-tqdm",
        "--limit-train-batches", "2", "--kd-epochs", "1"]


def main(capsys, *argv):
    rc = cifar10_main.main(list(argv))
    out, err = capsys.readouterr()
    return rc, [json.loads(l) for l in out.splitlines() if l.startswith("{")], err


def event(recs, name):
    return [r for r in recs if r["event"] == name]


def test_resnet_teacher_chain(tmp_path, capsys):
    resnet, teacher = tmp_path / "resnet20.bin", tmp_path / "teacher_model.bin"
    # 1) ResNet-20, plain training: its length is --kd-epochs (the authors' semantics).
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--student-resnet",
                         "--kd-wd", "5e-4", "--save", str(resnet))
    assert rc == 0, err
    assert [r["phase"] for r in event(recs, "epoch")] == ["train"]
    assert models.describe_checkpoint(str(resnet))["arch"] == "resnet20"
    acc = event(recs, "done")[0]["accuracy"]
    # --test-only needs only the path, for a ResNet-20 too.
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--test-only", "--load", str(resnet))
    assert rc == 0 and event(recs, "test")[0]["accuracy"] == acc, err
    # 2) the ReLU ResMLP teacher distilled from it, as run_resmlp_teacher.sh does.
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--teacher-load", str(resnet),
                         "--teacher-resnet", "--do-kd", "--student-nl-act", "base",
                         "--student-hidden-factor", "0.25", "--save", str(teacher))
    assert rc == 0, err
    assert [r["phase"] for r in event(recs, "epoch")] == ["kd"]
    info = models.describe_checkpoint(str(teacher))
    assert (info["arch"], info["act"], info["hidden_factor"]) == ("resmlp", "base", 0.25)
    # 3) the file alone says it is a ResNet-20; wrong combinations are one line.
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--test-only",
                         "--teacher-load", str(teacher), "--teacher-resnet")
    assert rc == 2 and err.count("\n") == 1 and "holds a ResMLP but the model is a ResNet-20" in err
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--teacher-load", str(resnet),
                         "--do-kt", "--do-kd")
    assert rc == 2 and err.count("\n") == 1 and "drop --do-kt" in err, err


def test_svhn_uses_the_small_resmlp(tmp_path, capsys, monkeypatch):
    from tests.test_data import write_svhn
    import torchvision
    folder = tmp_path / "svhn"
    _, md5 = write_svhn(str(folder), sizes=(("train", 50), ("test", 20)))
    table = {k: list(v) for k, v in torchvision.datasets.SVHN.split_list.items()}
    for split, digest in md5.items():
        table[split][2] = digest
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", table)
    out = tmp_path / "s.bin"
    rc, recs, err = main(capsys, "--dataset", "svhn", "--dataset-dir", str(folder), *TINY,
                         "--workers", "0", "--student-nl-act", "psa", "--student-hidden-factor",
                         "0.25", "--save", str(out))
    assert rc == 0, err
    info = models.describe_checkpoint(str(out))
    assert (info["embed_dim"], info["depth"], info["hidden"]) == (64, 2, 16)
    acc = event(recs, "done")[0]["accuracy"]
    rc, recs, err = main(capsys, "--dataset", "svhn", "--dataset-dir", str(folder), "--workers", "0",
                         "--disable-tqdm", "--test-only", "--load", str(out))
    assert rc == 0 and event(recs, "test")[0]["accuracy"] == acc, err
    # A CIFAR-shaped run refuses the SVHN file in one line; a missing .mat names the fix.
    rc, _, err = main(capsys, "--dataset", "synthetic", *TINY, "--test-only", "--load", str(out))
    assert rc == 2 and err.count("\n") == 1 and "SVHN: embed 64, 2 blocks" in err, err
    rc, _, err = main(capsys, "--dataset", "svhn", "--dataset-dir", str(tmp_path / "none"),
                      *TINY, "--epochs", "1")
    assert rc == 2 and err.count("\n") == 1 and "--download-dataset" in err, err


def test_kt_alone_with_zero_plain_epochs(tmp_path, capsys):
    """--do-kt --epochs 0: KT and nothing after it (the KT-only student, e.g. to look at it);
    a negative count is one line."""
    teacher, kt = tmp_path / "teacher.bin", tmp_path / "kt.bin"
    rc, _, err = main(capsys, "--dataset", "synthetic", *TINY, "--student-nl-act", "base",
                      "--student-hidden-factor", "0.25", "--save", str(teacher))
    assert rc == 0, err
    rc, recs, err = main(capsys, "--dataset", "synthetic", *TINY, "--teacher-load", str(teacher),
                         "--do-kt", "--kt-epochs", "1", "--epochs", "0", "--student-nl-act", "bspline",
                         "--student-hidden-factor", "0.25", "--save", str(kt))
    assert rc == 0, err
    assert [r["block"] for r in event(recs, "kt_epoch")] == [0, 1, 2, 3]
    assert event(recs, "epoch") == [] and kt.exists()
    rc, _, err = main(capsys, "--dataset", "synthetic", *TINY, "--teacher-load", str(teacher),
                      "--do-kt", "--epochs", "-1")
    assert rc == 2 and err.count("\n") == 1 and "at least one epoch" in err, err
