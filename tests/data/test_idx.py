"""idx: sources (the MNIST / Fashion-MNIST format): a tiny gzip pair and a plain pair written here,
read by the data stage as one image feature; broken files are errors that name the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from danlu.data.readers import open_reader
from danlu.errors import DataError, RecipeError
from tests.data.helpers import prepared


def write_idx(path, a: np.ndarray) -> None:
    """`a` (uint8) as an IDX file: 00 00 08 ndim, big-endian int32 dims, the bytes."""
    data = struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}i", *a.shape) + a.tobytes()
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
        f.write(data)


@pytest.fixture
def idx_folder(tmp_path):
    """60 train + 30 t10k images of 6x6 (class c: a bright c-th row), gzipped like the Debian
    package ships them, labels 1, 3 and 7."""
    rng = np.random.default_rng(0)
    root = tmp_path / "fmnist"
    root.mkdir()
    for name, n in (("train", 60), ("t10k", 30)):
        y = np.array([1, 3, 7] * (n // 3), np.uint8)
        x = rng.integers(0, 40, (n, 6, 6)).astype(np.uint8)
        x[np.arange(n), y % 6] = 250
        write_idx(root / f"{name}-images-idx3-ubyte.gz", x)
        write_idx(root / f"{name}-labels-idx1-ubyte.gz", y)
    return root


def test_idx_folder_is_one_image_feature_with_its_labels(tmp_path, idx_folder):
    r = open_reader(f"idx:{idx_folder}", chunk_rows=25)
    chunks = list(r.chunks())
    assert r.shapes == {"pixels": [1, 6, 6]} and r.label_values == ["1", "3", "7"]
    assert [len(c) for c in chunks] == [25, 5, 25, 25, 10]  # t10k first (name order), per file
    assert chunks[-1].rows[-1] == 90 and chunks[0].columns["pixels"].shape == (25, 36)
    assert chunks[0].labels[:3].tolist() == [0, 1, 2]
    one = open_reader(f"idx:{idx_folder / 'train-images-idx3-ubyte.gz'}")
    assert sum(len(c) for c in one.chunks()) == 60
    d = prepared(tmp_path / "d", {"source": f"idx:{idx_folder}"})
    assert d["info"]["image_shape"] == [1, 6, 6] and d["info"]["labels"] == ["1", "3", "7"]
    assert d["cleaning"]["rows_in"] == 90


def test_idx_errors_name_the_file(tmp_path, idx_folder):
    (idx_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(RecipeError, match="t10k-labels-idx1-ubyte.gz"):
        open_reader(f"idx:{idx_folder}")
    plain = tmp_path / "p"
    plain.mkdir()
    write_idx(plain / "a-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    write_idx(plain / "a-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="4 images of shape \\[2, 2\\] with \\[3\\] labels"):
        open_reader(f"idx:{plain}")
    (plain / "a-images-idx3-ubyte").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(DataError, match="not an IDX file"):
        open_reader(f"idx:{plain}")
