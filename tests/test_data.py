"""Datasets: the embedded default, and every loader on tiny files written in its on-disk format."""
from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from engine.data import FASHION_MINI_PATH, augment, from_arrays, load_dataset
from engine.idx import read_idx, write_idx

rng = np.random.default_rng(0)


def test_fashion_mini_is_embedded_stratified_uint8():
    data = load_dataset("fashion-mini")
    assert FASHION_MINI_PATH.stat().st_size <= 8 * 1024 * 1024
    assert data.train_images.shape == (12000, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (2000, 1, 28, 28) and data.test_labels.dtype == torch.int64
    assert np.bincount(data.train_labels.numpy()).tolist() == [1200] * 10
    assert np.bincount(data.test_labels.numpy()).tolist() == [200] * 10
    assert data.num_classes == 10 and data.classes[0] == "T-shirt/top"
    assert load_dataset("fashion-mini") is data  # loaded once per process


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="'imagenet'"):
        load_dataset("imagenet")


def _tiny_idx(folder, gz: bool, n_train=30, n_test=10):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    train_y = (np.arange(n_train) % 10).astype(np.uint8)
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", train_x)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", train_y)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", train_x[:n_test])
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", train_y[:n_test])
    return train_x, train_y


def test_idx_round_trip_and_bad_header(tmp_path):
    array = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", array)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-7])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_torchvision_layout(tmp_path, gz):
    train_x, train_y = _tiny_idx(tmp_path / "FashionMNIST" / "raw", gz)
    data = load_dataset("fashion-mnist", root=tmp_path)
    assert data.train_images.shape == (30, 1, 28, 28)
    assert np.array_equal(data.train_images[:, 0].numpy(), train_x)
    assert np.array_equal(data.train_labels.numpy(), train_y)
    assert data.hflip


def test_mnist_from_a_plain_folder(tmp_path):
    _tiny_idx(tmp_path, gz=False)
    data = load_dataset("mnist", root=tmp_path)
    assert data.test_images.shape == (10, 1, 28, 28) and not data.hflip


def test_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", root=tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_dataset("cifar10", root=tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path / "nothing")


def _cifar_batch(path, n, label_key, extra=None):
    payload = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: list(np.arange(n) % 10)}
    with open(path, "wb") as handle:
        pickle.dump({**payload, **(extra or {})}, handle)
    return payload


def test_cifar10_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    first = _cifar_batch(folder / "data_batch_1", 4, "labels")
    for i in range(2, 6):
        _cifar_batch(folder / f"data_batch_{i}", 4, "labels")
    _cifar_batch(folder / "test_batch", 3, "labels")
    data = load_dataset("cifar10", root=tmp_path)
    assert data.train_images.shape == (20, 3, 32, 32) and data.test_images.shape == (3, 3, 32, 32)
    assert np.array_equal(data.train_images[0].numpy().reshape(-1), first["data"][0])
    assert data.classes[0] == "airplane"


def test_cifar100_with_meta(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _cifar_batch(folder / "train", 6, "fine_labels")
    _cifar_batch(folder / "test", 2, "fine_labels")
    with open(folder / "meta", "wb") as handle:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, handle)
    data = load_dataset("cifar100", root=tmp_path)
    assert data.num_classes == 100 and data.classes[5] == "c5"


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_loader_refuses_pickled_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": _Exploit(), "labels": [0]}, handle)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_dataset("cifar10", root=tmp_path)


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    for split, n in (("train", 5), ("test", 3)):
        savemat(tmp_path / f"{split}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                                  "y": np.array([[10], [1], [2], [3], [4]][:n], dtype=np.uint8)})
    data = load_dataset("svhn", root=tmp_path)
    assert data.train_images.shape == (5, 3, 32, 32)
    assert data.train_labels.tolist() == [0, 1, 2, 3, 4]  # SVHN's label 10 is the digit 0


def test_from_arrays_accepts_channels_last():
    images = rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8)
    data = from_arrays("toy", ("a", "b"), images, np.arange(8) % 2, images[:2], np.array([0, 1]))
    assert data.image_shape == (3, 6, 6)
    assert np.array_equal(data.train_images[1].permute(1, 2, 0).numpy(), images[1])


def test_augment_is_a_seeded_translation():
    images = load_dataset("fashion-mini").train_images[:16]
    first = augment(images, hflip=True, generator=torch.Generator().manual_seed(1))
    again = augment(images, hflip=True, generator=torch.Generator().manual_seed(1))
    assert first.shape == images.shape and first.dtype == torch.uint8
    assert torch.equal(first, again)
    assert not torch.equal(first, images)
    still = augment(images, hflip=False, generator=torch.Generator(), pad=0)
    assert torch.equal(still, images)  # no padding and no flip: identity
