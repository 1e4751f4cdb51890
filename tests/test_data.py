"""Data loaders: CIFAR-10 and SVHN (torchvision, on files in their real formats written
here), Fashion-MNIST (idx files), synthetic; the ResMLP shape and folder of each data set."""
import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

import data
from models import build_resmlp
from tests.oracles import need_path


def write_cifar(root, n_per_batch=6, seed=0):
    """Write a tiny CIFAR-10 python-format folder and return (folder, md5 map)."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    arrays = {}
    for name in names:
        x = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        arrays[name] = (x, y)
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({"data": x, "labels": y}, f)
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    md5 = {n: hashlib.md5(open(os.path.join(folder, n), "rb").read()).hexdigest()
           for n in names + ["batches.meta"]}
    return folder, md5, arrays


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    import torchvision
    folder, md5, arrays = write_cifar(str(tmp_path))
    cls = torchvision.datasets.CIFAR10
    # Our files, our checksums: torchvision still verifies every file.
    monkeypatch.setattr(cls, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setitem(cls.meta, "md5", md5["batches.meta"])
    return str(tmp_path), arrays


def test_cifar10_loader_reads_real_format(tiny_cifar):
    root, arrays = tiny_cifar
    train, test, info = data.cifar10(root, augment=False)
    assert (len(train), len(test), info["in_channels"]) == (30, 6, 3)
    x, y = test[2]
    raw = arrays["test_batch"][0][2].reshape(3, 32, 32).astype(np.float32) / 255.0
    mean = torch.tensor(data.CIFAR10_MEAN).view(3, 1, 1)
    std = torch.tensor(data.CIFAR10_STD).view(3, 1, 1)
    torch.testing.assert_close(x, (torch.from_numpy(raw) - mean) / std, atol=1e-6, rtol=0)
    assert y == arrays["test_batch"][1][2]
    xa, _ = data.cifar10(root, augment=True)[0][0]  # with RandAugment etc.
    assert xa.shape == (3, 32, 32)


def test_cifar10_honours_dataset_dir(tiny_cifar, tmp_path):
    """The authors' script ignored --dataset-dir for CIFAR-10; get_datasets reads from it."""
    root, arrays = tiny_cifar
    train, test, info = data.get_datasets("cifar10", root, augment=False)
    assert (len(train), len(test), info["resmlp_shape"]) == (30, 6, dict(embed_dim=96, depth=4))
    x, y = train[7]  # data_batch_2, image 1
    raw = arrays["data_batch_2"][0][1].reshape(3, 32, 32).astype(np.float32) / 255.0
    mean = torch.tensor(data.CIFAR10_MEAN).view(3, 1, 1)
    std = torch.tensor(data.CIFAR10_STD).view(3, 1, 1)
    torch.testing.assert_close(x, (torch.from_numpy(raw) - mean) / std, atol=1e-6, rtol=0)
    assert y == arrays["data_batch_2"][1][1]
    other = str(tmp_path / "elsewhere")
    with pytest.raises(data.DatasetError, match=rf"^CIFAR-10 not found at {other}"):
        data.get_datasets("cifar10", other)


def test_cifar10_corrupt_file_detected(tiny_cifar):
    root, _ = tiny_cifar
    with open(os.path.join(root, "cifar-10-batches-py", "test_batch"), "ab") as f:
        f.write(b"x")
    with pytest.raises(data.DatasetError, match="unreadable"):
        data.cifar10(root)


def test_cifar10_missing_names_path_and_flag(tmp_path):
    with pytest.raises(data.DatasetError, match=r"not found at .*cifar-10-batches-py; pass --download-dataset"):
        data.cifar10(str(tmp_path / "empty"))


def write_idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    header = (0x0800 | arr.ndim).to_bytes(4, "big") + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def test_fashion_mnist_from_folder(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (5, 28, 28))
    labels = np.array([3, 1, 4, 1, 5])
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    train, test, info = data.fashion_mnist(str(tmp_path), augment=False)
    assert info["in_channels"] == 1 and len(train) == 5
    x, y = test[2]
    assert x.shape == (1, 32, 32) and y == 4
    inner = (torch.from_numpy(imgs[2]).float() / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(x[0, 2:30, 2:30], inner, atol=1e-5, rtol=0)
    torch.testing.assert_close(x[0, 0, 0], torch.tensor(-0.2860 / 0.3530), atol=1e-5, rtol=0)


def test_fashion_mnist_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_SYSTEM_DIR", str(tmp_path / "none"))
    with pytest.raises(data.DatasetError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist(str(tmp_path))


def test_fashion_mnist_debian_package():
    need_path(data.FASHION_SYSTEM_DIR, "the Fashion-MNIST files",
              "apt-get install -y dataset-fashion-mnist")
    train, test, _ = data.fashion_mnist(None)
    assert (len(train), len(test)) == (60000, 10000)
    assert int(test.labels[0]) == 9  # the first test image is an ankle boot


def test_synthetic_is_deterministic_and_balanced():
    a, _ = data.synthetic_images(200, seed=5)
    b, yb = data.synthetic_images(200, seed=5)
    assert torch.equal(a, b)
    assert torch.bincount(yb).tolist() == [20] * 10


# --- SVHN ---------------------------------------------------------------------------------------

def write_svhn(folder, sizes=(("train", 7), ("test", 5)), seed=0):
    """Tiny SVHN .mat files in the real layout: X (32, 32, 3, N) uint8, y (N, 1) with 10 for
    the digit 0. Returns {split: (X, y)} and {split: md5}."""
    from scipy.io import savemat  # a dependency of SVHN (requirements.txt)
    rng = np.random.default_rng(seed)
    arrays, md5 = {}, {}
    os.makedirs(folder, exist_ok=True)
    for split, n in sizes:
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)  # 1..10, 10 = digit 0
        path = os.path.join(folder, data.SVHN_FILES[split])
        savemat(path, {"X": x, "y": y})
        arrays[split] = (x, y)
        md5[split] = hashlib.md5(open(path, "rb").read()).hexdigest()
    return arrays, md5


@pytest.fixture
def svhn_md5(monkeypatch):
    """Point torchvision's SVHN checksums at our files (it still verifies them)."""
    import torchvision
    table = {k: list(v) for k, v in torchvision.datasets.SVHN.split_list.items()}
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", table)

    def use(md5):
        for split, digest in md5.items():
            table[split][2] = digest
    return use


def test_svhn_reads_the_mat_layout(tmp_path, svhn_md5):
    arrays, md5 = write_svhn(str(tmp_path))
    svhn_md5(md5)
    train, test, info = data.get_datasets("svhn", str(tmp_path), augment=False)
    assert (len(train), len(test)) == (7, 5)
    assert info == dict(in_channels=3, num_classes=10, name="svhn",
                        resmlp_shape=dict(embed_dim=64, depth=2))
    mean = torch.tensor(data.SVHN_MEAN).view(3, 1, 1)
    std = torch.tensor(data.SVHN_STD).view(3, 1, 1)
    for split, ds in (("train", train), ("test", test)):
        x_all, y_all = arrays[split]
        for i in range(len(ds)):
            x, y = ds[i]
            raw = torch.from_numpy(x_all[:, :, :, i].astype(np.float32) / 255).permute(2, 0, 1)
            torch.testing.assert_close(x, (raw - mean) / std, atol=1e-6, rtol=0)
            assert y == int(y_all[i, 0]) % 10, "label 10 is the digit 0"
    xa, _ = data.get_datasets("svhn", str(tmp_path), augment=True)[0][3]
    assert xa.shape == (3, 32, 32)


def test_svhn_missing_file_names_it_and_the_flag(tmp_path):
    write_svhn(str(tmp_path), sizes=(("train", 3),))
    missing = os.path.join(str(tmp_path), "test_32x32.mat")
    with pytest.raises(data.DatasetError) as info:
        data.get_datasets("svhn", str(tmp_path))
    msg = str(info.value)
    assert msg.startswith(f"SVHN file {missing} not found; pass --download-dataset") and "\n" not in msg


def test_svhn_downloads_only_when_asked(tmp_path, svhn_md5, monkeypatch):
    import torchvision.datasets.svhn as tv_svhn
    source = tmp_path / "server"
    _, md5 = write_svhn(str(source))
    svhn_md5(md5)
    fetched = []

    def fake_download(url, root, filename, md5=None):
        fetched.append(filename)
        with open(os.path.join(root, filename), "wb") as f:
            f.write((source / filename).read_bytes())
    monkeypatch.setattr(tv_svhn, "download_url", fake_download)
    target = str(tmp_path / "data")
    os.makedirs(target)
    with pytest.raises(data.DatasetError, match="not found; pass --download-dataset"):
        data.get_datasets("svhn", target, download=False)
    assert fetched == []
    train, test, _ = data.get_datasets("svhn", target, download=True, augment=False)
    assert fetched == ["train_32x32.mat", "test_32x32.mat"] and (len(train), len(test)) == (7, 5)


def test_svhn_corrupt_file(tmp_path, svhn_md5):
    _, md5 = write_svhn(str(tmp_path))
    svhn_md5(md5)
    with open(tmp_path / "test_32x32.mat", "ab") as f:
        f.write(b"x")
    with pytest.raises(data.DatasetError, match=r"test_32x32\.mat is corrupt \(checksum mismatch\); "
                                                r"delete it and pass --download-dataset"):
        data.get_datasets("svhn", str(tmp_path))


def test_svhn_resmlp_shape_and_folder():
    shape = data.resmlp_shape("svhn")
    assert shape == dict(embed_dim=64, depth=2)
    assert data.experiment_folder("svhn") == os.path.join(
        "output", "svhn", "resmlp_layers_2_h_4_embed_64")
    assert data.experiment_folder("fashion-mnist") == os.path.join(
        "output", "fashion_mnist", "resmlp_layers_4_h_4_embed_96")
    assert data.experiment_folder("cifar10") == os.path.join(
        "output", "cifar10", "resmlp_layers_4_h_4_embed_96")
    m = build_resmlp("psa", 4, **shape)
    assert m.embed_linear.weight.shape == (64, 48) and len(m.layers) == 2
    assert m.layers[1].layers[1].layers[1].weight.shape == (256, 64)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(data.DatasetError, match="unknown dataset 'mnist'"):
        data.resmlp_shape("mnist")


def test_dataset_error_is_a_user_error():
    import errors
    assert issubclass(data.DatasetError, errors.UserError)
    assert issubclass(data.DatasetError, RuntimeError)
