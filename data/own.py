"""A user's own images: ``--dataset folder:PATH`` and ``--dataset npz:FILE``.

``folder:PATH`` is a torchvision ``ImageFolder`` tree: ``PATH/train/<class>/*`` and
``PATH/test/<class>/*`` (or ``PATH/val/<class>/*``), any format PIL reads. Class names come
from the training split's folders (sorted); the test split must have the same folders. Every
image is decoded once into memory: grey when every image is grey (one channel), else RGB
(three); the image size is the most common training image size (the shorter side when it is
not square), and any image of another size is resized to it (bilinear, aspect not kept).

``npz:FILE`` is a NumPy archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``: uint8
images (N, H, W) or (N, H, W, C) with H == W, integer labels 0..K-1 (K from ``y_train``).

The ResMLP's patch size (4) must divide the image size. Images are normalised per channel
with the mean and (population) standard deviation of the training split's pixels in [0, 1];
training images get a random crop (padding size // 8) and a horizontal flip. The data's
description (source, size, channels, classes, normalisation) is stored in every checkpoint
trained on it under the key :data:`CHECKPOINT_KEY` (a uint8 tensor holding JSON), so that
``--test-only --load`` normalises with the same numbers and a checkpoint used with data of
another shape or other classes is refused with one line. Every problem with the data is a
one-line :class:`data.DatasetError` naming the fix.
"""
from __future__ import annotations

import json
import os
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch

KINDS = ("folder", "npz")
PATCH_SIZE = 4                 # models.resmlp.ResMLP's patch size
CHECKPOINT_KEY = "own_data_info"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
TEST_SPLITS = ("test", "val")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _error(message: str):
    from . import DatasetError
    return DatasetError(message)


def parse(name: str) -> Optional[Tuple[str, str]]:
    """``(kind, absolute path)`` of ``folder:PATH`` / ``npz:FILE``; None for any other name."""
    kind, sep, path = name.partition(":")
    if not sep or kind not in KINDS:
        return None
    if not path:
        raise _error(f"--dataset {name} names no path; pass --dataset {kind}:PATH")
    return kind, os.path.abspath(os.path.expanduser(path))


def is_own(name: str) -> bool:
    kind, sep, _ = name.partition(":")
    return bool(sep) and kind in KINDS


def normalisation(images: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and population std of uint8 images (N, C, H, W), pixels scaled to
    [0, 1] (computed in float64)."""
    mean, std = [], []
    for c in range(images.shape[1]):
        ch = images[:, c]
        mean.append(float(ch.mean(dtype=np.float64)) / 255.0)
        std.append(float(ch.std(dtype=np.float64)) / 255.0)
    return tuple(mean), tuple(std)


@dataclass
class OwnData:
    """What a model trained on own data depends on, and the two in-memory splits."""
    source: str                      # the --dataset value, with an absolute path
    img_size: int
    in_channels: int
    classes: List[str]
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    train_size: int = 0
    test_size: int = 0
    sets: tuple = field(default=(), repr=False)
    from_checkpoint: Optional[str] = None   # set when the normalisation came from a checkpoint

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        return dict(source=self.source, img_size=self.img_size, in_channels=self.in_channels,
                    classes=list(self.classes), mean=list(self.mean), std=list(self.std))

    def shape_text(self) -> str:
        return _shape_text(self.img_size, self.in_channels, self.num_classes)

    def use_normalisation(self, mean, std, origin: str) -> None:
        """Normalise both splits with ``mean``/``std`` from now on (a checkpoint's)."""
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.from_checkpoint = origin
        for ds in self.sets:
            ds.mean = torch.tensor(self.mean).view(-1, 1, 1)
            ds.std = torch.tensor(self.std).view(-1, 1, 1)


def _shape_text(size: int, channels: int, classes: int) -> str:
    return (f"{size}x{size} images with {channels} channel{'s' if channels != 1 else ''} "
            f"and {classes} classes")


def _check_size(size: int, where: str) -> None:
    """``where`` reads as the start of a sentence: "FILE: the images are"."""
    if size < PATCH_SIZE or size % PATCH_SIZE:
        lo = max(PATCH_SIZE, size - size % PATCH_SIZE)
        raise _error(f"{where} {size}x{size}, but the ResMLP's patch size "
                     f"{PATCH_SIZE} must divide the image size; resize them to {lo}x{lo} or "
                     f"{lo + PATCH_SIZE}x{lo + PATCH_SIZE}")


def _datasets(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              source: str, classes: List[str], augment: bool):
    """(train, test, info) from uint8 (N, C, S, S) arrays and int labels."""
    from . import TensorImages
    if not x_train.shape[0]:
        raise _error(f"{source} has no training images; add some")
    mean, std = normalisation(x_train)
    for c, s in enumerate(std):
        if s == 0:
            raise _error(f"channel {c} of every training image of {source} has the same value, "
                         "so it cannot be normalised; check the images (or drop the channel)")
    size, channels = int(x_train.shape[-1]), int(x_train.shape[1])
    train = TensorImages(torch.from_numpy(np.ascontiguousarray(x_train)),
                         torch.from_numpy(y_train.astype(np.int64)), mean, std, pad_to=size,
                         augment=augment, crop_padding=size // 8, flip=True)
    test = TensorImages(torch.from_numpy(np.ascontiguousarray(x_test)),
                        torch.from_numpy(y_test.astype(np.int64)), mean, std, pad_to=size,
                        augment=False)
    own = OwnData(source=source, img_size=size, in_channels=channels, classes=list(classes),
                  mean=mean, std=std, train_size=len(train), test_size=len(test),
                  sets=(train, test))
    from . import RESMLP_SHAPES
    info = dict(name=source, in_channels=channels, num_classes=len(classes), img_size=size,
                resmlp_shape=dict(RESMLP_SHAPES["cifar10"]), own=own)
    return train, test, info


# --- npz -----------------------------------------------------------------------------------

def _npz_images(x, key: str, path: str) -> np.ndarray:
    if x.dtype != np.uint8:
        raise _error(f"{path}: {key} has dtype {x.dtype}; store uint8 images (0..255), e.g. "
                     f"{key}=(x * 255).round().astype(numpy.uint8) for floats in [0, 1]")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[1] != x.shape[2] and x.shape[2] == x.shape[3]:
            raise _error(f"{path}: {key} has shape {x.shape}, which looks like (N, C, H, W); "
                         f"store (N, H, W, C): {key}.transpose(0, 2, 3, 1)")
        x = x.transpose(0, 3, 1, 2)
    else:
        raise _error(f"{path}: {key} has shape {x.shape}; store images as (N, H, W) or "
                     "(N, H, W, C)")
    if x.shape[2] != x.shape[3]:
        raise _error(f"{path}: {key} images are {x.shape[2]}x{x.shape[3]} (height x width); the "
                     "ResMLP needs square images: crop, pad or resize them")
    if x.shape[1] < 1:
        raise _error(f"{path}: {key} images have no channels; store (N, H, W) or (N, H, W, C)")
    return x


def _npz_labels(y, key: str, path: str, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise _error(f"{path}: {key} has shape {y.shape} and dtype {y.dtype}; store one integer "
                     "label per image (class indices 0..K-1, not one-hot)")
    if y.shape[0] != n:
        x = "x" + key[1:]
        raise _error(f"{path}: {x} has {n} images but {key} has {y.shape[0]} labels; store one "
                     "label per image")
    if n and y.min() < 0:
        raise _error(f"{path}: {key} has the negative label {int(y.min())}; labels must be class "
                     "indices 0..K-1")
    return y


def npz_datasets(path: str, source: str, augment: bool = True):
    if not os.path.isfile(path):
        raise _error(f"npz file not found: {path}; pass --dataset npz:FILE with a file written "
                     "by numpy.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)")
    save_hint = "numpy.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)"
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise _error(f"{path} is not a readable .npz archive ({first}); write it with "
                     f"{save_hint}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _error(f"{path} is not a readable .npz archive (it holds one array, as "
                     f"numpy.save writes); write it with {save_hint}")
    with z:
        missing = [k for k in NPZ_KEYS if k not in z.files]
        if missing:
            raise _error(f"{path} lacks {', '.join(missing)} (it holds "
                         f"{', '.join(z.files) or 'no arrays'}); save it with {save_hint}")
        try:
            arrays = {k: z[k] for k in NPZ_KEYS}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _error(f"{path} is not a readable .npz archive ({first}); write it with "
                         f"{save_hint}") from None
    x_train = _npz_images(arrays["x_train"], "x_train", path)
    x_test = _npz_images(arrays["x_test"], "x_test", path)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise _error(f"{path}: x_train images are {_hwc(x_train)} but x_test images "
                     f"{_hwc(x_test)}; store both splits at one size and channel count")
    y_train = _npz_labels(arrays["y_train"], "y_train", path, x_train.shape[0])
    y_test = _npz_labels(arrays["y_test"], "y_test", path, x_test.shape[0])
    if not x_train.shape[0]:
        raise _error(f"{path}: x_train holds no images; store at least one per class")
    if not x_test.shape[0]:
        raise _error(f"{path}: x_test holds no images; store a test split to evaluate on")
    _check_size(x_train.shape[-1], f"{path}: the images are")
    k = int(y_train.max()) + 1
    absent = sorted(set(range(k)) - set(np.unique(y_train).tolist()))
    if absent:
        raise _error(f"{path}: y_train has labels up to {k - 1} but none of class "
                     f"{absent[0]}; labels must be 0..K-1 with every class present (e.g. "
                     "y - y.min() for labels that start at 1)")
    if int(y_test.max()) >= k:
        raise _error(f"{path}: y_test has label {int(y_test.max())} but y_train only 0..{k - 1}; "
                     "every test class needs training images")
    return _datasets(x_train, y_train, x_test, y_test, source, [str(i) for i in range(k)],
                     augment)


def _hwc(x: np.ndarray) -> str:
    return f"{x.shape[2]}x{x.shape[3]}x{x.shape[1]}"


# --- folder --------------------------------------------------------------------------------

def _split_samples(folder: str, split: str):
    """``(classes, [(path, class index), ...])`` of one split, through torchvision's
    ``ImageFolder`` enumeration (its image extensions, sorted class folders)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
    exts = ", ".join(IMG_EXTENSIONS)
    try:
        classes, index = find_classes(folder)
    except FileNotFoundError:
        raise _error(f"{folder} has no class folders; put each class's images in "
                     f"{folder}/<class name>/") from None
    counts = {c: 0 for c in classes}
    samples = make_dataset(folder, index, extensions=IMG_EXTENSIONS, allow_empty=True)
    for _, i in samples:
        counts[classes[i]] += 1
    empty = [c for c in classes if not counts[c]]
    if len(empty) == len(classes):
        raise _error(f"the {split} split {folder} holds no images (extensions {exts}); add "
                     f"images to its class folders")
    if empty:
        raise _error(f"class folder {os.path.join(folder, empty[0])} holds no images "
                     f"(extensions {exts}); add images or remove the folder from every split")
    return classes, samples


def _scan(samples, split_dir: str):
    """(mode, (w, h)) of each image, read from the file headers only."""
    from PIL import Image, UnidentifiedImageError
    out = []
    for path, _ in samples:
        try:
            with Image.open(path) as im:
                out.append((im.mode, im.size))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _error(f"cannot read image {path} ({first}); fix or delete it") from None
    return out


def _decode(samples, size: int, mode: str) -> np.ndarray:
    from PIL import Image
    channels = 1 if mode == "L" else 3
    x = np.empty((len(samples), channels, size, size), dtype=np.uint8)
    for i, (path, _) in enumerate(samples):
        try:
            with Image.open(path) as im:
                im = im.convert(mode)
                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise _error(f"cannot decode image {path} ({first}); fix or delete it") from None
        x[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return x


def folder_datasets(root: str, source: str, augment: bool = True):
    if not os.path.isdir(root):
        raise _error(f"dataset folder not found: {root}; pass --dataset folder:PATH with "
                     "PATH/train/<class>/* and PATH/test/<class>/* images")
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):
        raise _error(f"{root} has no train/ folder; put the training images in "
                     f"{train_dir}/<class>/ and the test images in {root}/test/<class>/")
    test_dir = next((os.path.join(root, s) for s in TEST_SPLITS
                     if os.path.isdir(os.path.join(root, s))), None)
    if test_dir is None:
        raise _error(f"{root} has no test/ (or val/) folder; put the test images in "
                     f"{root}/test/<class>/")
    classes, train_samples = _split_samples(train_dir, "train")
    test_classes, test_samples = _split_samples(test_dir, os.path.basename(test_dir))
    if test_classes != classes:
        only_train = sorted(set(classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(classes))
        parts = ([f"only in train/: {', '.join(only_train)}"] if only_train else []) + \
                ([f"only in {os.path.basename(test_dir)}/: {', '.join(only_test)}"]
                 if only_test else [])
        raise _error(f"the class folders of {train_dir} and {test_dir} differ ("
                     f"{'; '.join(parts)}); give both splits the same class folders")
    heads = _scan(train_samples, train_dir)
    test_heads = _scan(test_samples, test_dir)
    grey = all(m in GREY_MODES for m, _ in heads + test_heads)
    size = Counter(min(wh) for _, wh in heads).most_common(1)[0][0]
    _check_size(size, f"{root}: the training images are (most of them, shorter side)")
    mode = "L" if grey else "RGB"
    x_train = _decode(train_samples, size, mode)
    x_test = _decode(test_samples, size, mode)
    y_train = np.array([i for _, i in train_samples], dtype=np.int64)
    y_test = np.array([i for _, i in test_samples], dtype=np.int64)
    return _datasets(x_train, y_train, x_test, y_test, source, classes, augment)


def get_datasets(name: str, augment: bool = True):
    """``(train_set, test_set, info)`` of ``folder:PATH`` or ``npz:FILE``; ``info`` as the
    built-in sets' plus ``img_size`` and ``own`` (an :class:`OwnData`)."""
    kind, path = parse(name)
    source = f"{kind}:{path}"
    if kind == "folder":
        return folder_datasets(path, source, augment)
    return npz_datasets(path, source, augment)


# --- checkpoints ---------------------------------------------------------------------------

def checkpoint_entries(info) -> dict:
    """The extra checkpoint entry of a model trained on ``info``'s data ({} for the built-in
    data sets): the data's description as JSON in a uint8 tensor."""
    own = info.get("own") if isinstance(info, dict) else None
    if own is None:
        return {}
    raw = json.dumps(own.describe(), sort_keys=True).encode()
    return {CHECKPOINT_KEY: torch.tensor(list(raw), dtype=torch.uint8)}


def stored_info(state_dict) -> Optional[dict]:
    """The data description a checkpoint's state dict stores (None when it has none)."""
    t = state_dict.get(CHECKPOINT_KEY)
    if t is None:
        return None
    try:
        d = json.loads(bytes(t.to(torch.uint8).tolist()).decode())
        for k in ("source", "img_size", "in_channels", "classes", "mean", "std"):
            d[k]
    except (ValueError, KeyError, TypeError):
        from models import CheckpointError
        raise CheckpointError(f"the checkpoint's {CHECKPOINT_KEY} entry is damaged; retrain "
                              "the model or re-copy the file") from None
    return d


def check_checkpoint(state_dict, where: str, info) -> None:
    """Refuse, in one line, a checkpoint trained on data other than ``info``'s (size,
    channels, classes), and normalise the data with the checkpoint's stored normalisation
    from now on (the first checkpoint loaded fixes it; a second one that differs is
    refused)."""
    from models import CheckpointError
    stored = stored_info(state_dict)
    own: Optional[OwnData] = info.get("own")
    if stored is None:
        return
    was = _shape_text(stored["img_size"], stored["in_channels"], len(stored["classes"]))
    if own is None:
        raise CheckpointError(f"{where} was trained on {stored['source']} ({was}), not on "
                              f"{info['name']}; evaluate it with --dataset {stored['source']}")
    if (stored["img_size"], stored["in_channels"], len(stored["classes"])) != \
            (own.img_size, own.in_channels, own.num_classes):
        raise CheckpointError(f"{where} was trained on {was} ({stored['source']}), but "
                              f"{own.source} has {own.shape_text()}; use the data it was trained "
                              "on (same size, colour and classes) or train a model on this data")
    if list(stored["classes"]) != list(own.classes):
        diff = next(i for i, (a, b) in enumerate(zip(stored["classes"], own.classes)) if a != b)
        raise CheckpointError(f"{where} was trained on classes {', '.join(stored['classes'])} "
                              f"but {own.source} has {', '.join(own.classes)} (class {diff}: "
                              f"{stored['classes'][diff]!r} vs {own.classes[diff]!r}); name the "
                              "class folders as in the training data")
    mean, std = tuple(stored["mean"]), tuple(stored["std"])
    if (mean, std) == (own.mean, own.std):
        own.from_checkpoint = own.from_checkpoint or where
        return
    if own.from_checkpoint is not None:
        raise CheckpointError(f"{where} and {own.from_checkpoint} were trained with different "
                              "normalisations (different training data); use models trained "
                              "on the same data")
    own.use_normalisation(mean, std, where)
    print(f"note: normalising {own.source} with the mean and std stored in {where} (its "
          "training split gives other values)", file=sys.stderr, flush=True)


def check_checkpoint_file(path_or_state_dict, info) -> None:
    """:func:`check_checkpoint` on a checkpoint file (or a state dict already read); a file
    that cannot be read is left to the model loader, which names the problem."""
    from models import CheckpointError, read_state_dict
    if isinstance(path_or_state_dict, dict):
        sd, where = path_or_state_dict, "the checkpoint"
    else:
        where = os.path.expanduser(os.fspath(path_or_state_dict))
        try:
            sd = read_state_dict(where)
        except CheckpointError:
            return
    check_checkpoint(sd, where, info)
