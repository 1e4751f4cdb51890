"""Data loaders: CIFAR-10 (torchvision, on a CIFAR-format archive written here),
Fashion-MNIST (idx files), synthetic."""
import gzip
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

import data


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


@pytest.mark.skipif(not os.path.isdir(data.FASHION_SYSTEM_DIR),
                    reason="install with: apt-get install -y dataset-fashion-mnist")
def test_fashion_mnist_debian_package():
    train, test, _ = data.fashion_mnist(None)
    assert (len(train), len(test)) == (60000, 10000)
    assert int(test.labels[0]) == 9  # the first test image is an ankle boot


def test_synthetic_is_deterministic_and_balanced():
    a, _ = data.synthetic_images(200, seed=5)
    b, yb = data.synthetic_images(200, seed=5)
    assert torch.equal(a, b)
    assert torch.bincount(yb).tolist() == [20] * 10
