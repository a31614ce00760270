"""A device's private data on disk: the file `fedshare device run --data` reads.

Format: a NumPy ``.npz`` archive with four arrays, ``train_x`` [n, d] and ``train_y``
[n] (the training share), ``validation_x`` [m, d] and ``validation_y`` [m] (the slice
the device scores its peers' updates on). Features are real numbers (stored as
float32); labels are non-negative integers for classification or reals for
regression. A requester's test set uses ``x`` and ``y``. Nothing is pickled.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from offchain.errors import LearningError
from offchain.learning.data import ArrayDataset, DeviceData
from offchain.storage.atomic import write_atomic

__all__ = ["save_device_data", "load_device_data", "save_dataset", "load_dataset"]

_DEVICE_ARRAYS = ("train_x", "train_y", "validation_x", "validation_y")


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_atomic(Path(path), buffer.getvalue())
    except OSError as exc:
        raise LearningError(f"cannot write data file {path}: {exc}") from exc


def _read(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            missing = [n for n in names if n not in archive.files]
            if missing:
                raise LearningError(
                    f"data file {path} lacks the arrays {', '.join(missing)} "
                    f"(it has {', '.join(archive.files) or 'none'})")
            return {n: archive[n] for n in names}
    except FileNotFoundError:
        raise LearningError(f"data file {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise LearningError(f"data file {path} is not a .npz archive: {exc}") from None


def save_device_data(path: Path, data: DeviceData) -> None:
    """Writes one device's training share and validation slice."""
    _write(path, {"train_x": data.train.x, "train_y": data.train.y,
                  "validation_x": data.validation.x, "validation_y": data.validation.y})


def load_device_data(path: Path) -> DeviceData:
    """Reads a device data file. Raises LearningError naming the problem: missing
    file or arrays, wrong shapes, non-finite values, negative labels."""
    arrays = _read(path, _DEVICE_ARRAYS)
    try:
        return DeviceData(train=ArrayDataset(arrays["train_x"], arrays["train_y"]),
                          validation=ArrayDataset(arrays["validation_x"],
                                                  arrays["validation_y"]))
    except LearningError as exc:
        raise LearningError(f"data file {path}: {exc}") from None


def save_dataset(path: Path, data: ArrayDataset) -> None:
    """Writes a data set (a requester's test set) as ``x`` and ``y``."""
    _write(path, {"x": data.x, "y": data.y})


def load_dataset(path: Path) -> ArrayDataset:
    """Reads a data set written by :func:`save_dataset`. Raises LearningError."""
    arrays = _read(path, ("x", "y"))
    try:
        return ArrayDataset(arrays["x"], arrays["y"])
    except LearningError as exc:
        raise LearningError(f"data file {path}: {exc}") from None
