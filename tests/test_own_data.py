"""Training and evaluating on a user's own images: ``--dataset folder:PATH`` and ``npz:FILE``.

The data sets are written here (PNG files with PIL, arrays with numpy.savez). A grey 28x28
set and a colour 32x32 set are each trained for one short epoch, saved, and evaluated again
with ``--test-only``: the accuracy must be the same, the model must have the data's channels,
size and classes, and the normalisation stored in the checkpoint must equal the per-channel
mean and std that numpy computes from the image files. Every bad input must give one line
``cifar10_main.py: error: ...`` and exit status 2.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import cifar10_main
import data
import models
from tests.doc_blocks import bash_blocks, command_env
from data import own

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--disable-tqdm", "--batch-size", "8", "--test-batch-size", "16"]
TRAIN = [*FAST, "--epochs", "1", "--limit-train-batches", "2", "--student-nl-act", "base",
         "--student-hidden-factor", "1"]


def pattern(label: int, size: int, rng) -> np.ndarray:
    """A grey uint8 image of class ``label``: stripes of a class-dependent period, noise."""
    xx = np.arange(size)[None, :] + np.zeros((size, 1))
    img = 60 + 140 * ((xx // (label + 2)) % 2) + rng.normal(0, 25, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_folder(root, *, size=32, rgb=True, classes=("ant", "bee", "cat"), n_train=8, n_test=4,
                 test_split="test", seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), (test_split, n_test)):
        for label, name in enumerate(classes):
            d = os.path.join(root, split, name)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                g = pattern(label, size, rng)
                img = Image.fromarray(np.stack([g, 255 - g, g // 2], -1) if rgb else g)
                img.save(os.path.join(d, f"{i}.png"))
    return str(root)


def write_npz(path, *, size=28, channels=None, n_train=24, n_test=12, classes=4, seed=1, **over):
    rng = np.random.default_rng(seed)
    y_train = np.arange(n_train) % classes
    y_test = np.arange(n_test) % classes
    x_train = np.stack([pattern(int(y), size, rng) for y in y_train])
    x_test = np.stack([pattern(int(y), size, rng) for y in y_test])
    if channels:
        x_train = np.repeat(x_train[..., None], channels, -1)
        x_test = np.repeat(x_test[..., None], channels, -1)
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    arrays.update(over)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


def cli(*args):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "cifar10_main.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def event(recs, name):
    return [r for r in recs if r["event"] == name][0]


def stored(path):
    return own.stored_info(models.read_state_dict(str(path)))


def numpy_stats(images):
    """Per-channel mean and population std of uint8 images (N, H, W, C) in [0, 1]."""
    x = images.astype(np.float64) / 255.0
    return x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))


def png_images(root, split):
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(root, split))
                   for f in fs)
    arrs = [np.asarray(Image.open(f)) for f in files]
    return np.stack([a if a.ndim == 3 else a[..., None] for a in arrs])


@pytest.fixture(autouse=True)
def _keep_determinism():
    """In-process runs switch deterministic algorithms on; leave the flag as it was."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    """A colour 32x32 folder, a ReLU model trained on it and its --test-only accuracy."""
    tmp = tmp_path_factory.mktemp("rgb")
    root = write_folder(tmp / "shapes")
    ckpt = tmp / "T.bin"
    recs = cli("--dataset", f"folder:{root}", *TRAIN, "--save", str(ckpt))
    again = cli("--dataset", f"folder:{root}", *FAST, "--test-only", "--load", str(ckpt))
    return dict(root=root, ckpt=ckpt, done=event(recs, "done")["accuracy"],
                test=event(again, "test")["accuracy"], start=event(recs, "start"))


def test_folder_rgb_train_save_reload_same_accuracy(rgb):
    assert rgb["test"] == rgb["done"]
    assert rgb["start"]["dataset"] == f"folder:{rgb['root']}"
    info = models.describe_checkpoint(str(rgb["ckpt"]), img_size=32)
    assert (info["in_channels"], info["num_classes"], info["num_patches"], info["embed_dim"],
            info["depth"]) == (3, 3, 64, 96, 4)


def test_folder_rgb_normalisation_is_numpys(rgb):
    mean, std = numpy_stats(png_images(rgb["root"], "train"))
    s = stored(rgb["ckpt"])
    np.testing.assert_allclose(s["mean"], mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(s["std"], std, rtol=0, atol=1e-12)
    assert (s["img_size"], s["in_channels"], s["classes"]) == (32, 3, ["ant", "bee", "cat"])
    assert s["source"] == f"folder:{rgb['root']}"
    # The loaded test split is normalised with exactly these numbers.
    _, test, info = data.get_datasets(f"folder:{rgb['root']}", augment=False)
    x = png_images(rgb["root"], "test").transpose(0, 3, 1, 2).astype(np.float32) / 255
    want = (x - np.float32(mean).reshape(1, 3, 1, 1)) / np.float32(std).reshape(1, 3, 1, 1)
    got, labels = test.batch(list(range(len(test))))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_test_only_uses_the_stored_normalisation(rgb, tmp_path, capsys):
    """Same test images, other training images: --test-only must normalise with the
    checkpoint's numbers (the training split's would give other logits)."""
    other = write_folder(tmp_path / "other", seed=0)
    for name in ("ant", "bee", "cat"):            # brighten the training split only
        d = os.path.join(other, "train", name)
        for f in os.listdir(d):
            a = np.asarray(Image.open(os.path.join(d, f))).astype(np.int32)
            Image.fromarray(np.clip(a + 60, 0, 255).astype(np.uint8)).save(os.path.join(d, f))
    _, _, info = data.get_datasets(f"folder:{other}", augment=False)
    assert info["own"].mean != tuple(stored(rgb["ckpt"])["mean"])
    rc = cifar10_main.main(["--dataset", f"folder:{other}", *FAST, "--test-only", "--load",
                            str(rgb["ckpt"]), "--no-cuda"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"[test] Accuracy: {rgb['done']:.2f}" in out
    assert "normalising" in err and "stored in" in err


def test_npz_grey_28_train_kt_kd_reload(tmp_path):
    path = write_npz(tmp_path / "grey.npz")
    teacher, student = tmp_path / "T.bin", tmp_path / "S.bin"
    cli("--dataset", f"npz:{path}", *TRAIN, "--save", str(teacher))
    recs = cli("--dataset", f"npz:{path}", *FAST, "--teacher-load", str(teacher), "--do-kt",
               "--kt-epochs", "1", "--do-kd", "--kd-epochs", "1", "--limit-train-batches", "2",
               "--student-nl-act", "psa", "--student-hidden-factor", "0.5", "--save", str(student))
    done = event(recs, "done")["accuracy"]
    again = cli("--dataset", f"npz:{path}", *FAST, "--test-only", "--load", str(student))
    assert event(again, "test")["accuracy"] == done
    info = models.describe_checkpoint(str(student), img_size=28)
    assert (info["act"], info["in_channels"], info["num_classes"], info["num_patches"]) == \
        ("psa", 1, 4, 49)
    z = np.load(path)
    mean, std = numpy_stats(z["x_train"][..., None])
    for ckpt in (teacher, student):
        s = stored(ckpt)
        np.testing.assert_allclose(s["mean"], mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(s["std"], std, rtol=0, atol=1e-12)
        assert (s["img_size"], s["in_channels"], s["classes"]) == (28, 1, ["0", "1", "2", "3"])


def test_npz_rgb_nhwc_and_grey_folder(tmp_path):
    _, test, info = data.get_datasets(f"npz:{write_npz(tmp_path / 'c.npz', size=16, channels=3)}")
    assert (info["in_channels"], info["img_size"], info["num_classes"]) == (3, 16, 4)
    assert tuple(test.images.shape) == (12, 3, 16, 16)
    _, test, info = data.get_datasets(f"folder:{write_folder(tmp_path / 'g', rgb=False)}")
    assert (info["in_channels"], info["img_size"], info["num_classes"]) == (1, 32, 3)
    assert info["resmlp_shape"] == data.resmlp_shape("cifar10")


def test_folder_mixed_sizes_resized_and_val_split(tmp_path):
    root = write_folder(tmp_path / "m", test_split="val")
    Image.fromarray(np.full((40, 48, 3), 7, np.uint8)).save(
        os.path.join(root, "train", "ant", "big.png"))
    Image.fromarray(np.full((20, 20), 9, np.uint8)).convert("L").save(
        os.path.join(root, "val", "bee", "small.png"))
    train, test, info = data.get_datasets(f"folder:{root}", augment=False)
    assert info["img_size"] == 32 and info["in_channels"] == 3
    assert len(train) == 25 and len(test) == 13
    big = train.images[train.labels == 0]
    assert any(bool((im == 7).all()) for im in big)          # resized to 32x32, RGB
    small = test.images[test.labels == 1]
    assert any(bool((im == 9).all()) for im in small)        # a grey image made RGB


def test_checkpoint_key_known_to_the_loader():
    assert own.CHECKPOINT_KEY in models.checkpoint.EXTRA_KEYS


# --- errors: one line, exit status 2 -------------------------------------------------------

def run_error(capsys, argv):
    try:
        rc = cifar10_main.main(argv)
    except SystemExit as exc:                      # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2, (rc, out, err)
    assert len(lines) == 1 and lines[0].startswith("cifar10_main.py: error: "), err
    assert "Traceback" not in err
    return lines[0]


def folder_case(tmp_path, name):
    root = tmp_path / name
    if name == "missing":
        return f"folder:{root}", ["dataset folder not found", str(root)]
    if name == "no-train":
        os.makedirs(root / "test" / "a")
        return f"folder:{root}", ["has no train/ folder", "train/<class>"]
    write_folder(root)
    if name == "no-test":
        import shutil
        shutil.rmtree(root / "test")
        return f"folder:{root}", ["has no test/ (or val/) folder", "test/<class>"]
    if name == "no-classes":
        import shutil
        shutil.rmtree(root / "train")
        os.makedirs(root / "train")
        return f"folder:{root}", ["has no class folders", "<class name>"]
    if name == "empty-split":
        for c in ("ant", "bee", "cat"):
            for f in os.listdir(root / "test" / c):
                os.unlink(root / "test" / c / f)
        return f"folder:{root}", ["test split", "holds no images", "add images"]
    if name == "empty-class":
        for f in os.listdir(root / "train" / "bee"):
            os.unlink(root / "train" / "bee" / f)
        return f"folder:{root}", ["class folder", "bee", "holds no images"]
    if name == "class-sets":
        os.rename(root / "test" / "cat", root / "test" / "cow")
        return f"folder:{root}", ["differ", "only in train/: cat", "only in test/: cow",
                                  "same class folders"]
    if name == "unreadable":
        (root / "train" / "ant" / "bad.png").write_bytes(b"not a png at all")
        return f"folder:{root}", ["cannot read image", "bad.png", "fix or delete it"]
    if name == "size":
        import shutil
        shutil.rmtree(root)
        write_folder(root, size=30)
        return f"folder:{root}", ["30x30", "patch size 4", "28x28 or 32x32"]
    raise AssertionError(name)


FOLDER_CASES = ["missing", "no-train", "no-test", "no-classes", "empty-split", "empty-class",
                "class-sets", "unreadable", "size"]


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_folder_errors(tmp_path, capsys, case):
    spec, words = folder_case(tmp_path, case)
    line = run_error(capsys, ["--dataset", spec, *TRAIN, "--no-cuda"])
    for w in words:
        assert w in line, (w, line)


def npz_case(tmp_path, name):
    p = tmp_path / "d.npz"
    if name == "missing":
        return p, ["npz file not found", str(p), "numpy.savez"]
    if name == "unreadable":
        p.write_bytes(b"PK\x03\x04 truncated zip")
        return p, ["not a readable .npz archive", "numpy.savez"]
    if name == "single-array":
        with open(p, "wb") as f:
            np.save(f, np.zeros(3))
        return p, ["not a readable .npz archive"]
    if name == "keys":
        np.savez(p, images=np.zeros((2, 8, 8), np.uint8), labels=np.zeros(2, int))
        return p, ["lacks x_train, y_train, x_test, y_test", "holds images, labels",
                   "numpy.savez"]
    if name == "lengths":
        write_npz(p, y_train=np.zeros(5, np.int64))
        return p, ["x_train has 24 images but y_train has 5 labels"]
    if name == "float":
        write_npz(p, x_test=np.zeros((12, 28, 28), np.float32))
        return p, ["x_test has dtype float32", "uint8"]
    if name == "nchw":
        write_npz(p, x_train=np.zeros((24, 3, 28, 28), np.uint8))
        return p, ["looks like (N, C, H, W)", "transpose(0, 2, 3, 1)"]
    if name == "not-square":
        write_npz(p, x_train=np.zeros((24, 28, 24), np.uint8), x_test=np.zeros((12, 28, 24), np.uint8))
        return p, ["28x24", "square"]
    if name == "split-shapes":
        write_npz(p, x_test=np.zeros((12, 32, 32), np.uint8))
        return p, ["x_train images are 28x28x1 but x_test images 32x32x1"]
    if name == "size":
        write_npz(p, size=30)
        return p, ["30x30", "patch size 4", "28x28 or 32x32"]
    if name == "labels-gap":
        write_npz(p, y_train=np.arange(24) % 4 + 1)
        return p, ["none of class 0", "y - y.min()"]
    if name == "test-label":
        write_npz(p, y_test=np.full(12, 9))
        return p, ["y_test has label 9", "0..3"]
    if name == "one-hot":
        write_npz(p, y_train=np.eye(4, dtype=np.int64)[np.arange(24) % 4])
        return p, ["one integer label per image", "not one-hot"]
    if name == "constant":
        write_npz(p, x_train=np.full((24, 28, 28), 5, np.uint8))
        return p, ["channel 0 of every training image", "same value", "cannot be normalised"]
    if name == "empty-test":
        write_npz(p, x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.int64))
        return p, ["x_test holds no images"]
    raise AssertionError(name)


NPZ_CASES = ["missing", "unreadable", "single-array", "keys", "lengths", "float", "nchw",
             "not-square", "split-shapes", "size", "labels-gap", "test-label", "one-hot",
             "constant", "empty-test"]


@pytest.mark.parametrize("case", NPZ_CASES)
def test_npz_errors(tmp_path, capsys, case):
    path, words = npz_case(tmp_path, case)
    line = run_error(capsys, ["--dataset", f"npz:{path}", *TRAIN, "--no-cuda"])
    for w in words:
        assert w in line, (w, line)


@pytest.mark.parametrize("spec,words", [("folder:", ["names no path", "folder:PATH"]),
                                        ("imagenet", ["unknown dataset 'imagenet'",
                                                      "folder:PATH or npz:FILE"])])
def test_dataset_flag_errors(capsys, spec, words):
    line = run_error(capsys, ["--dataset", spec, "--test-only", "--load", "x"])
    for w in words:
        assert w in line, (w, line)


def test_checkpoint_of_other_data_refused(rgb, tmp_path, capsys):
    grey = write_npz(tmp_path / "grey.npz")
    line = run_error(capsys, ["--dataset", f"npz:{grey}", *FAST, "--test-only", "--load",
                              str(rgb["ckpt"]), "--no-cuda"])
    assert "was trained on 32x32 images with 3 channels and 3 classes" in line
    assert "has 28x28 images with 1 channel and 4 classes" in line
    assert "use the data it was trained on" in line
    line = run_error(capsys, ["--dataset", "synthetic", "--synthetic-size", "100", *FAST,
                              "--test-only", "--load", str(rgb["ckpt"]), "--no-cuda"])
    assert f"evaluate it with --dataset folder:{rgb['root']}" in line
    renamed = write_folder(tmp_path / "renamed", classes=("ant", "bee", "cow"))
    line = run_error(capsys, ["--dataset", f"folder:{renamed}", *FAST, "--test-only", "--load",
                              str(rgb["ckpt"]), "--no-cuda"])
    assert "classes ant, bee, cat" in line and "'cat' vs 'cow'" in line
    # As a teacher of a student on other data: the same refusal, before any training.
    line = run_error(capsys, ["--dataset", f"npz:{grey}", *TRAIN, "--teacher-load",
                              str(rgb["ckpt"]), "--do-kd", "--no-cuda"])
    assert "was trained on 32x32 images" in line


def test_error_from_the_real_entry_point(tmp_path):
    """The command itself: status 2, one line on stderr, no traceback."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "cifar10_main.py"), "--dataset",
                           f"npz:{tmp_path / 'none.npz'}", *TRAIN], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"cifar10_main.py: error: npz file not found: {tmp_path / 'none.npz'}; pass --dataset "
        "npz:FILE with a file written by numpy.savez(FILE, x_train=..., y_train=..., "
        "x_test=..., y_test=...)"]


def test_builtin_names_unchanged():
    for name in ("cifar10", "svhn", "fashion-mnist", "synthetic"):
        cfg, _ = cifar10_main.parse(["--dataset", name])
        assert cfg.dataset == name
        assert not own.is_own(name)
    assert own.checkpoint_entries(dict(name="synthetic")) == {}
    cfg, _ = cifar10_main.parse(["--dataset", "npz:~/x.npz"])
    assert cfg.dataset == "npz:" + os.path.expanduser("~/x.npz")


# --- docs/OWN_DATA.md: its command blocks run as written, in order ---------------------------

SMOKE = {"--epochs 10": "--epochs 1 --limit-train-batches 2",
         "--kd-epochs 10": "--kd-epochs 1 --limit-train-batches 2",
         "--kt-epochs 2": "--kt-epochs 1"}


def test_own_data_doc_commands_chain(tmp_path):
    """Every ```bash block of docs/OWN_DATA.md, in order, in an empty folder beside
    ``cifar10_main.py`` (a link to it), at smoke scale (the epoch counts above): each exits 0,
    and the evaluations print the accuracies the training runs ended with, as the page says."""
    text = open(os.path.join(ROOT, "docs", "OWN_DATA.md")).read()
    blocks = bash_blocks(text)
    assert len(blocks) == 6, len(blocks)
    os.symlink(os.path.join(ROOT, "cifar10_main.py"), tmp_path / "cifar10_main.py")
    env = command_env()
    outs = []
    for block in blocks:
        for old, new in SMOKE.items():
            block = block.replace(old, new)
        assert "python" in block
        proc = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{block}\n{proc.stdout}\n{proc.stderr}"
        outs.append(proc.stdout)
    done = [event([json.loads(x) for x in o.splitlines() if x.startswith("{")], "done")["accuracy"]
            for o in (outs[1], outs[2])]
    tests = [json.loads(x)["accuracy"] for x in outs[3].splitlines()
             if x.startswith("{") and json.loads(x)["event"] == "test"]
    assert tests == done
    assert "'img_size': 32" in outs[5] and "'classes': ['circle', 'square', 'triangle']" in outs[5]
    assert (tmp_path / "runs" / "own" / "teacher28.bin").is_file()
