"""Datasets held in memory as uint8 tensors, and batch-level augmentation.

Every dataset becomes one `ImageDataset`: a training pool and a test set, images uint8 (N, C, H, W),
labels int64. It is loaded once per process (`load_dataset` is cached) and never mutated; splits are
index arrays over it (see `engine.splits`).

Sources:
- ``fashion-mini`` — embedded in ``assets/fashion-mini.npz`` (built by scripts/build_fashion_mini.py).
- ``fashion-mnist`` — IDX files from a user directory, torchvision's ``<root>/FashionMNIST/raw/``, or the
  Debian package ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist).
- ``mnist``, ``cifar10``, ``cifar100``, ``svhn`` — torchvision's on-disk formats under ``root``;
  torchvision's downloader fetches them when ``download=True`` and the machine is online.
"""
from __future__ import annotations

import functools
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.idx import find_idx, read_idx

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
FASHION_MINI_PATH = ASSETS_DIR / "fashion-mini.npz"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def default_data_root() -> Path:
    """Where real datasets live: $UNLEARNING_LAB_DATA, else ./data."""
    return Path(os.environ.get("UNLEARNING_LAB_DATA", "data"))


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A training pool and a test set in memory. Never mutate the tensors: the object is shared."""

    name: str
    classes: tuple[str, ...]
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor   # uint8 (M, C, H, W)
    test_labels: torch.Tensor   # int64 (M,)
    mean: tuple[float, ...]     # per-channel, of train images scaled to [0, 1]
    std: tuple[float, ...]
    hflip: bool                 # horizontal flips preserve the label (clothes, objects; not digits)
    validation_size: int        # how many of the training pool the default split holds out
    source: str                 # where the pixels came from, for run records

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def from_arrays(name: str, classes, train_x, train_y, test_x, test_y, *, hflip: bool = False,
                validation_size: int | None = None, source: str = "arrays") -> ImageDataset:
    """Build an `ImageDataset` from numpy arrays: images (N, H, W), (N, C, H, W) or (N, H, W, C) uint8.

    Use it to bring your own data, or for small fixtures in tests. ``validation_size`` defaults to
    10 % of the training pool, at most 5,000 images.
    """
    def as_nchw(images: np.ndarray) -> torch.Tensor:
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 3:
            images = images[:, None]
        elif images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(images))

    train_images, test_images = as_nchw(train_x), as_nchw(test_x)
    if validation_size is None:
        validation_size = min(5000, len(train_images) // 10)
    if not 0 <= validation_size < len(train_images):
        raise ValueError(f"validation_size {validation_size} must lie in [0, {len(train_images)})")
    scaled = train_images.float().div_(255)
    mean = tuple(scaled.mean(dim=(0, 2, 3)).tolist())
    std = tuple(scaled.std(dim=(0, 2, 3)).tolist())
    return ImageDataset(
        name=name, classes=tuple(classes),
        train_images=train_images, train_labels=torch.as_tensor(np.asarray(train_y), dtype=torch.int64),
        test_images=test_images, test_labels=torch.as_tensor(np.asarray(test_y), dtype=torch.int64),
        mean=mean, std=std, hflip=hflip, validation_size=validation_size, source=source)


_make = from_arrays  # old private name, kept for callers written against it


# ---------------------------------------------------------------------------------------------- loaders
def _load_fashion_mini(root: Path | None, download: bool) -> ImageDataset:
    if not FASHION_MINI_PATH.is_file():
        raise FileNotFoundError(f"embedded dataset missing: {FASHION_MINI_PATH} "
                                "(rebuild: python -m scripts.build_fashion_mini)")
    with np.load(FASHION_MINI_PATH, allow_pickle=False) as arrays:
        return from_arrays("fashion-mini", FASHION_CLASSES, arrays["train_images"], arrays["train_labels"],
                     arrays["test_images"], arrays["test_labels"], hflip=True, validation_size=2000,
                     source=f"{FASHION_MINI_PATH.name} (stratified Fashion-MNIST subset)")


_IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _read_idx_folder(folder: Path) -> tuple[np.ndarray, ...] | None:
    paths = [find_idx(folder, stem) for stem in _IDX_STEMS]
    if any(path is None for path in paths):
        return None
    return tuple(read_idx(path) for path in paths)


def _load_idx_dataset(name: str, torchvision_folder: str, classes, extra_dirs: list[Path], root: Path,
                      download: bool, hflip: bool) -> ImageDataset:
    candidates = [root, root / torchvision_folder / "raw", *extra_dirs]
    for folder in candidates:
        arrays = _read_idx_folder(folder)
        if arrays is not None:
            return from_arrays(name, classes, *arrays, hflip=hflip, source=str(folder))
    if download:
        import torchvision.datasets as tvd
        getattr(tvd, torchvision_folder)(str(root), train=True, download=True)
        getattr(tvd, torchvision_folder)(str(root), train=False, download=True)
        return _load_idx_dataset(name, torchvision_folder, classes, extra_dirs, root, False, hflip)
    raise FileNotFoundError(
        f"{name}: no IDX files found. Expected {', '.join(_IDX_STEMS)} (plain or .gz) in one of: "
        + ", ".join(str(c) for c in candidates) + ". Pass download=True (--download) on a machine with internet.")


def _load_fashion_mnist(root: Path, download: bool) -> ImageDataset:
    return _load_idx_dataset("fashion-mnist", "FashionMNIST", FASHION_CLASSES, [DEBIAN_FASHION_DIR], root,
                             download, hflip=True)


def _load_mnist(root: Path, download: bool) -> ImageDataset:
    return _load_idx_dataset("mnist", "MNIST", tuple(str(d) for d in range(10)), [], root, download, hflip=False)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR's python batches are pickles; allow only what they contain (no arbitrary code)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        batch = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(batch[label_key], dtype=np.int64)


def _load_cifar(name: str, root: Path, download: bool) -> ImageDataset:
    ten = name == "cifar10"
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    train_files = [folder / f"data_batch_{i}" for i in range(1, 6)] if ten else [folder / "train"]
    test_files = [folder / ("test_batch" if ten else "test")]
    meta = folder / ("batches.meta" if ten else "meta")
    needed = train_files + test_files
    if not all(path.is_file() for path in needed):
        if download:
            import torchvision.datasets as tvd
            (tvd.CIFAR10 if ten else tvd.CIFAR100)(str(root), train=True, download=True)
            return _load_cifar(name, root, False)
        missing = [str(path) for path in needed if not path.is_file()]
        raise FileNotFoundError(f"{name}: missing {', '.join(missing)} (torchvision's python-pickle format). "
                                "Pass download=True (--download) on a machine with internet.")
    label_key = "labels" if ten else "fine_labels"
    train = [_read_cifar_batch(path, label_key) for path in train_files]
    test_x, test_y = _read_cifar_batch(test_files[0], label_key)
    classes: tuple[str, ...] = CIFAR10_CLASSES if ten else tuple(str(c) for c in range(100))
    if not ten and meta.is_file():
        with open(meta, "rb") as handle:
            classes = tuple(_NumpyOnlyUnpickler(handle, encoding="latin1").load()["fine_label_names"])
    return from_arrays(name, classes, np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                 test_x, test_y, hflip=True, source=str(folder))


def _load_svhn(root: Path, download: bool) -> ImageDataset:
    files = {split: root / f"{split}_32x32.mat" for split in ("train", "test")}
    if not all(path.is_file() for path in files.values()):
        if download:
            import torchvision.datasets as tvd
            for split in files:
                tvd.SVHN(str(root), split=split, download=True)
            return _load_svhn(root, False)
        raise FileNotFoundError(f"svhn: missing {files['train']} / {files['test']} (torchvision's .mat format). "
                                "Pass download=True (--download) on a machine with internet.")
    from scipy.io import loadmat

    def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
        mat = loadmat(str(path))
        labels = mat["y"].astype(np.int64).reshape(-1) % 10  # SVHN stores the digit 0 as label 10
        return mat["X"].transpose(3, 2, 0, 1), labels

    train_x, train_y = read(files["train"])
    test_x, test_y = read(files["test"])
    return from_arrays("svhn", tuple(str(d) for d in range(10)), train_x, train_y, test_x, test_y, hflip=False,
                 source=str(root))


_LOADERS = {
    "fashion-mini": _load_fashion_mini,
    "fashion-mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
    "cifar10": lambda root, download: _load_cifar("cifar10", root, download),
    "cifar100": lambda root, download: _load_cifar("cifar100", root, download),
    "svhn": _load_svhn,
}
DATASET_NAMES = tuple(_LOADERS)


@functools.lru_cache(maxsize=4)
def _cached_load(name: str, root: str, download: bool) -> ImageDataset:
    return _LOADERS[name](Path(root), download)


def load_dataset(name: str = "fashion-mini", root: str | Path | None = None, download: bool = False) -> ImageDataset:
    """Load a dataset once per process (cached; never mutate the result).

    Args:
        name: one of ``DATASET_NAMES``.
        root: folder of the on-disk files (default ``default_data_root()``); ignored for fashion-mini.
        download: let torchvision download missing files (needs internet).

    Example:
        >>> data = load_dataset("fashion-mini")
        >>> data.train_images.shape, data.train_images.dtype
        (torch.Size([12000, 1, 28, 28]), torch.uint8)
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return _cached_load(name, str(root if root is not None else default_data_root()), bool(download))


# ----------------------------------------------------------------------------------------- augmentation
def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1] (models normalise internally)."""
    return images.float().div_(255)


def augment(images: torch.Tensor, *, hflip: bool, generator: torch.Generator | None = None,
            pad: int | None = None) -> torch.Tensor:
    """Random translation (pad-and-crop) and optional horizontal flip of a uint8 or float batch, on its device.

    Vectorised with one gather, so it costs little beside the forward pass (no per-image Python loop).
    """
    batch, channels, height, width = images.shape
    pad = max(2, height // 8) if pad is None else pad
    device = images.device
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    shifts = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device="cpu").to(device)
    rows = shifts[0][:, None] + torch.arange(height, device=device)[None]
    cols = shifts[1][:, None] + torch.arange(width, device=device)[None]
    if hflip:
        flip = torch.rand(batch, generator=generator, device="cpu").to(device) < 0.5
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    index = torch.arange(batch, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()
