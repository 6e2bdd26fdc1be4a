"""The `binary` feature: a pair of text values as one input column, 0 / 1, and 0.5 for a missing
or unseen value (docs/data.md); the contract cases are in tests/contracts/test_models.py."""

from __future__ import annotations

import numpy as np
import pytest

from danlu.errors import DataError
from danlu.evaluate.baseline import table_matrix
from danlu.features import build_features, load_features


def _fitted():
    (f,) = build_features([("smoker", "binary", ["smoker"], {})])
    return f.partial_fit(np.array(["yes", "no", None, "no", "NA"], dtype=object))


def test_the_sorted_pair_is_0_and_1_and_missing_or_unseen_is_one_half() -> None:
    f = _fitted()
    assert f.describe()["state"] == {"values": ["no", "yes"]}
    sent = np.array(["no", "yes", " yes", None, "", "NA", "maybe", 1.0], dtype=object)
    np.testing.assert_array_equal(f.encode(sent)["smoker"],
                                  np.array([0, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5], np.float32))
    assert f.unseen(sent) == 2  # "maybe" and 1.0; a missing cell is not unseen
    assert f.form() == {"name": "smoker", "type": "binary", "widget": "choice",
                        "choices": ["no", "yes"]}
    assert f.width() == 1 and not f.continuous and f.client_input()["datatype"] == "BYTES"
    (again,) = load_features([f.describe()])
    np.testing.assert_array_equal(again.encode(sent)["smoker"], f.encode(sent)["smoker"])


def test_the_graph_takes_the_code_as_one_column_and_a_tree_gets_nan_for_neither() -> None:
    import torch

    f = _fitted()
    codes = f.encode(np.array(["yes", None, "no"], dtype=object))["smoker"]
    out = f.module()(torch.from_numpy(codes))
    assert out.shape == (3, 1) and out.flatten().tolist() == [1.0, 0.5, 0.0]
    x, categorical, names = table_matrix([f], {"smoker": np.array(["no", "maybe", "yes"], object)})
    np.testing.assert_array_equal(x, [[0.0], [np.nan], [1.0]])
    assert categorical == [False] and names == ["smoker"]


def test_a_third_value_in_training_names_the_column_and_the_fix() -> None:
    f = _fitted()
    with pytest.raises(DataError, match=r"3 distinct values.*'maybe'.*`smoker: category`"):
        f.partial_fit(np.array(["maybe"], dtype=object))
