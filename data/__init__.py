"""Datasets for the ResMLP experiments: CIFAR-10, SVHN, Fashion-MNIST, synthetic, and a
user's own images (``folder:PATH``, ``npz:FILE``: :mod:`data.own`).

Every loader returns ``(train_set, test_set, info)`` where ``info`` holds ``name``,
``in_channels``, ``num_classes`` and ``resmlp_shape`` (the ``embed_dim`` and ``depth`` of the
paper's ResMLP for that data set); datasets yield ``(image, label)`` with normalised float
images of shape (C, 32, 32). CIFAR-10 and SVHN follow docs/METHOD.md section 6 and are read
from ``dataset_dir`` itself (the authors' script ignored its ``--dataset-dir`` for CIFAR-10;
here it is honoured); they are downloaded only when asked (``--download-dataset``).
"""
from __future__ import annotations

import gzip
import math
import os
from typing import Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from errors import UserError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
SVHN_MEAN = (0.4376821, 0.4437697, 0.47280442)
SVHN_STD = (0.19803012, 0.20101562, 0.19703614)
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
# Fashion-MNIST training-set statistics of the 28x28 images (pixels in [0, 1]).
FASHION_MEAN = (0.2860,)
FASHION_STD = (0.3530,)
FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
DATASETS = ("cifar10", "svhn", "fashion-mnist", "synthetic")
DEFAULT_DATASET_DIR = "~/icml_data"

# The paper's ResMLP per data set (docs/METHOD.md sections 2 and 6): SVHN uses a smaller one.
RESMLP_SHAPES = {
    "cifar10": dict(embed_dim=96, depth=4),
    "svhn": dict(embed_dim=64, depth=2),
    "fashion-mnist": dict(embed_dim=96, depth=4),
    "synthetic": dict(embed_dim=96, depth=4),
}


class DatasetError(UserError, RuntimeError):
    """A dataset is missing or unreadable (one-line message naming the fix)."""


def resmlp_shape(name: str) -> dict:
    """``dict(embed_dim=..., depth=...)`` of the paper's ResMLP for data set ``name`` (a
    user's own data, ``folder:PATH`` or ``npz:FILE``, gets CIFAR-10's)."""
    from . import own
    if own.is_own(name):
        return dict(RESMLP_SHAPES["cifar10"])
    if name not in RESMLP_SHAPES:
        raise DatasetError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
    return dict(RESMLP_SHAPES[name])


def experiment_folder(name: str, root: str = "output", teacher_hidden_factor: float = 4) -> str:
    """The authors' output folder of a data set's experiments, e.g.
    ``output/svhn/resmlp_layers_2_h_4_embed_64`` (teacher and student checkpoints)."""
    shape = resmlp_shape(name)
    return os.path.join(root, name.replace("-", "_"),
                        f"resmlp_layers_{shape['depth']}_h_{teacher_hidden_factor:g}"
                        f"_embed_{shape['embed_dim']}")


def _torchvision_transforms(mean, std, augment: bool):
    """Train and test transforms of docs/METHOD.md section 6: RandomCrop(32, padding 4),
    RandomHorizontalFlip and RandAugment for training (when ``augment``), then ToTensor and
    the data set's normalisation."""
    from torchvision import transforms as T
    norm = T.Normalize(mean, std)
    train_tf = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.RandAugment()] if augment else []
    return T.Compose(train_tf + [T.ToTensor(), norm]), T.Compose([T.ToTensor(), norm])


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# --- CIFAR-10 (torchvision) ----------------------------------------------------------------

def cifar10(dataset_dir: str, download: bool = False, augment: bool = True):
    """CIFAR-10 from ``dataset_dir/cifar-10-batches-py`` (torchvision's python format)."""
    import torchvision

    root = os.path.expanduser(dataset_dir)
    folder = os.path.join(root, "cifar-10-batches-py")
    if not download and not os.path.isdir(folder):
        raise DatasetError(f"CIFAR-10 not found at {folder}; pass --download-dataset to fetch it "
                           f"or --dataset-dir pointing at the folder that holds cifar-10-batches-py")
    train_tf, test_tf = _torchvision_transforms(CIFAR10_MEAN, CIFAR10_STD, augment)
    try:
        train = torchvision.datasets.CIFAR10(root, train=True, download=download, transform=train_tf)
        test = torchvision.datasets.CIFAR10(root, train=False, download=download, transform=test_tf)
    except RuntimeError as exc:
        raise DatasetError(f"CIFAR-10 under {folder} is unreadable ({_first_line(exc)}); "
                           "delete it and pass --download-dataset") from None
    except OSError as exc:  # download failed (no network, disk full)
        raise DatasetError(f"could not download CIFAR-10 into {root} ({_first_line(exc)}); "
                           "fetch cifar-10-python.tar.gz by hand and unpack it there") from None
    return train, test, dict(in_channels=3, num_classes=10, name="cifar10",
                             resmlp_shape=resmlp_shape("cifar10"))


# --- SVHN (torchvision; needs scipy for the .mat files) -----------------------------------

def svhn(dataset_dir: str, download: bool = False, augment: bool = True):
    """SVHN splits ``train`` and ``test`` from ``dataset_dir/{train,test}_32x32.mat``.

    Labels are 0..9 (torchvision maps the files' 10 to the digit 0). Training images get
    the same augmentation as CIFAR-10, as in the authors' script (horizontal flips of digits
    included).
    """
    root = os.path.expanduser(dataset_dir)
    if not download:
        for fname in SVHN_FILES.values():
            path = os.path.join(root, fname)
            if not os.path.isfile(path):
                raise DatasetError(f"SVHN file {path} not found; pass --download-dataset to "
                                   "fetch it or --dataset-dir pointing at the folder that holds "
                                   f"{' and '.join(SVHN_FILES.values())}")
    try:
        import scipy.io  # noqa: F401  (torchvision reads the .mat files with it)
    except ImportError:
        raise DatasetError("SVHN needs scipy to read its .mat files; install it with "
                           "'pip install -r requirements.txt'") from None
    import torchvision

    train_tf, test_tf = _torchvision_transforms(SVHN_MEAN, SVHN_STD, augment)
    sets = {}
    for split, tf in (("train", train_tf), ("test", test_tf)):
        path = os.path.join(root, SVHN_FILES[split])
        try:
            sets[split] = torchvision.datasets.SVHN(root, split=split, download=download,
                                                    transform=tf)
        except RuntimeError:
            raise DatasetError(f"SVHN file {path} is corrupt (checksum mismatch); delete it and "
                               "pass --download-dataset") from None
        except OSError as exc:
            raise DatasetError(f"could not download SVHN into {root} ({_first_line(exc)}); "
                               f"fetch {SVHN_FILES[split]} by hand into that folder") from None
        except ValueError as exc:  # scipy: a .mat file with the right checksum but unreadable
            raise DatasetError(f"SVHN file {path} is unreadable ({_first_line(exc)}); delete it "
                               "and pass --download-dataset") from None
    return sets["train"], sets["test"], dict(in_channels=3, num_classes=10, name="svhn",
                                             resmlp_shape=resmlp_shape("svhn"))


# --- Fashion-MNIST (Debian's dataset-fashion-mnist or any folder of the idx .gz files) ------

def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    if (magic >> 8) != 0x08 or ndim not in (1, 3):
        raise DatasetError(f"{path} is not an idx ubyte file; reinstall dataset-fashion-mnist")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated; reinstall dataset-fashion-mnist")
    return data.reshape(dims)


def _find_idx(folder: str, stem: str) -> str:
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    raise DatasetError(
        f"Fashion-MNIST file {stem}(.gz) not found in {folder}; install it with "
        f"'sudo apt-get install dataset-fashion-mnist' or pass --dataset-dir with the idx files")


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) in memory with tensor-side crop/flip and normalisation.

    Augmentation draws from torch's global generator, so it is reproducible
    under ``torch.manual_seed`` with ``num_workers=0``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std,
                 pad_to: int = 32, augment: bool = False, crop_padding: int = 4, flip: bool = True):
        if images.dim() == 3:
            images = images.unsqueeze(1)
        extra = pad_to - images.shape[-1]
        if extra > 0:
            lo = extra // 2
            images = torch.nn.functional.pad(images, (lo, extra - lo, lo, extra - lo))
        self.images = images.contiguous()
        self.labels = labels.long()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.augment = augment
        self.crop_padding = crop_padding
        self.flip = flip

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        images, labels = self.batch([i])
        return images[0], labels[0]

    def batch(self, indices):
        """Images ``indices`` as one batch ``(images, labels)``. Per image, in index order:
        two draws for the crop offset (``randint(0, 2p + 1, (2,))``), then one for the flip
        (``rand(()) < 0.5``), so a batch gets the crops and flips its images would get one by
        one under the same seed; then a handful of tensor operations for the whole batch
        (``training.setup.make_loaders`` reads batches through it: about half the cost of
        reading the images one by one)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        img = self.images[idx].float().div_(255.0)
        if self.augment:
            p = self.crop_padding
            n = len(indices)
            dy, dx, flip = [0] * n, [0] * n, [False] * n
            for k in range(n):                   # the draws of __getitem__, in its order
                if p:
                    dy[k], dx[k] = torch.randint(0, 2 * p + 1, (2,)).tolist()
                if self.flip:
                    flip[k] = bool(torch.rand(()) < 0.5)
            h, w = img.shape[-2:]
            if p:
                padded = torch.nn.functional.pad(img, (p, p, p, p))
                rows = torch.tensor(dy).view(n, 1, 1, 1) + torch.arange(h).view(1, 1, h, 1)
                cols = torch.tensor(dx).view(n, 1, 1, 1) + torch.arange(w).view(1, 1, 1, w)
                img = padded[torch.arange(n).view(n, 1, 1, 1),
                             torch.arange(img.shape[1]).view(1, -1, 1, 1), rows, cols]
            if any(flip):
                img = torch.where(torch.tensor(flip).view(n, 1, 1, 1), img.flip(-1), img)
        return (img - self.mean) / self.std, self.labels[idx]


class BatchReader(torch.utils.data.Dataset):
    """A dataset with a ``batch(indices)`` method, indexed by lists of indices (for a
    ``DataLoader`` with ``batch_size=None`` and a ``BatchSampler``): one call per batch."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, indices):
        return self.dataset.batch(indices)


def fashion_mnist(dataset_dir: str | None = None, augment: bool = True):
    candidates = [dataset_dir] if dataset_dir else []
    candidates.append(FASHION_SYSTEM_DIR)
    folder = None
    for c in candidates:
        c = os.path.expanduser(c)
        if os.path.isfile(os.path.join(c, "train-images-idx3-ubyte.gz")) or \
                os.path.isfile(os.path.join(c, "train-images-idx3-ubyte")):
            folder = c
            break
    if folder is None:
        where = " or ".join(os.path.expanduser(c) for c in candidates)
        raise DatasetError(f"Fashion-MNIST not found in {where}; install it with "
                           "'sudo apt-get install dataset-fashion-mnist' or pass --dataset-dir "
                           "with the idx .gz files")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = torch.from_numpy(_read_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte")).copy())
        y = torch.from_numpy(_read_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte")).copy())
        parts[split] = (x, y)
    train = TensorImages(*parts["train"], FASHION_MEAN, FASHION_STD, augment=augment)
    test = TensorImages(*parts["test"], FASHION_MEAN, FASHION_STD, augment=False)
    return train, test, dict(in_channels=1, num_classes=10, name="fashion-mnist",
                             resmlp_shape=resmlp_shape("fashion-mnist"))


# --- Synthetic: deterministic, learnable, in memory -------------------------------------------

def synthetic_images(n: int, seed: int, in_channels: int = 3, size: int = 32,
                     num_classes: int = 10) -> Tuple[torch.Tensor, torch.Tensor]:
    """Oriented gratings: class c has its own orientation, frequency and colour,
    with random phase, contrast and pixel noise. Same seed, same images."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=g)]
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    angle = labels.float() * (math.pi / num_classes)
    freq = 0.25 + 0.35 * (labels % 3).float() / 2
    phase = torch.rand(n, generator=g) * 2 * math.pi
    proj = (torch.cos(angle).view(-1, 1, 1) * xx + torch.sin(angle).view(-1, 1, 1) * yy)
    wave = torch.sin(freq.view(-1, 1, 1) * proj + phase.view(-1, 1, 1))
    contrast = 0.6 + 0.4 * torch.rand(n, 1, 1, generator=g)
    colour = torch.stack([(torch.arange(in_channels).float() + c) % in_channels
                          for c in range(num_classes)]) / max(in_channels - 1, 1)
    colour = 0.5 + 0.5 * colour[labels].view(n, in_channels, 1, 1)
    img = 0.5 + 0.4 * contrast.unsqueeze(1) * wave.unsqueeze(1) * colour
    img = img + 0.15 * torch.randn(n, in_channels, size, size, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def synthetic(train_size: int = 4000, test_size: int = 1000, in_channels: int = 3, augment: bool = True):
    xtr, ytr = synthetic_images(train_size, seed=1, in_channels=in_channels)
    xte, yte = synthetic_images(test_size, seed=2, in_channels=in_channels)
    mean, std = (0.5,) * in_channels, (0.25,) * in_channels
    train = TensorImages(xtr, ytr, mean, std, augment=augment, crop_padding=2, flip=False)
    test = TensorImages(xte, yte, mean, std, augment=False)
    return train, test, dict(in_channels=in_channels, num_classes=10, name="synthetic",
                             resmlp_shape=resmlp_shape("synthetic"))


def get_datasets(name: str, dataset_dir: str | None = None, download: bool = False,
                 augment: bool = True, synthetic_size: int = 4000):
    """``(train_set, test_set, info)`` of data set ``name`` (one of :data:`DATASETS`).

    ``dataset_dir`` (default ``~/icml_data``; Fashion-MNIST falls back to the Debian
    package's folder) is where CIFAR-10 (``cifar-10-batches-py/``) and SVHN
    (``train_32x32.mat``, ``test_32x32.mat``) are read from; ``download`` fetches them there.
    ``folder:PATH`` and ``npz:FILE`` are a user's own images (:mod:`data.own`).
    """
    from . import own
    if own.is_own(name):
        return own.get_datasets(name, augment=augment)
    if name == "cifar10":
        return cifar10(dataset_dir or DEFAULT_DATASET_DIR, download=download, augment=augment)
    if name == "svhn":
        return svhn(dataset_dir or DEFAULT_DATASET_DIR, download=download, augment=augment)
    if name == "fashion-mnist":
        return fashion_mnist(dataset_dir, augment=augment)
    if name == "synthetic":
        return synthetic(train_size=synthetic_size, test_size=max(synthetic_size // 4, 100),
                         augment=augment)
    raise DatasetError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")
