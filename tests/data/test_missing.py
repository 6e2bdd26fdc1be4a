"""Missing values in tables are imputed, not dropped (preprocess.clean.missing: impute): the
number feature fits training medians and missing indicators, the graph imputes with IsNaN/Where
(torch and ONNX Runtime agree on rows with NaN), cleaning.json counts the imputed cells, and only
rows without a target are removed. `missing: drop` keeps the old behaviour."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from danlu.data.stats import RunningStats
from danlu.errors import DataError, RecipeError
from danlu.features.category import CategoryFeature, CategoryHead
from danlu.features.normalize import Normalizer
from danlu.features.number import NumberFeature
from tests.data.helpers import prepared


def _table(n: int = 120) -> list[list[object]]:
    """a (NA every 5th row), b (empty every 5th, one 'abc'), c (complete), color (NA/empty
    cells), y (two missing targets). No two rows share their features."""
    rng = np.random.default_rng(0)
    rows: list[list[object]] = [["a", "b", "c", "color", "y"]]
    for i in range(n):
        a = "NA" if i % 5 == 1 else f"{rng.normal():.4f}"
        b = "" if i % 5 == 3 else ("abc" if i == 7 else f"{rng.uniform(0, 10):.3f}")
        color = "NA" if i % 9 == 2 else ("" if i % 9 == 4 else ["red", "blue"][i % 2])
        y = None if i in (10, 20) else i % 2
        rows.append([a, b, f"{i * 0.5:g}", color, y])
    return rows


def _data(path) -> dict:
    return {"source": f"csv:{path}", "target": "y",
            "features": {"a": "number", "b": "number", "c": "number", "color": "category"}}


def test_missing_numbers_are_imputed_counted_and_only_missing_targets_drop_rows(tmp_path,
                                                                               write_csv):
    r = prepared(tmp_path / "d", _data(write_csv(_table())))
    c = r["cleaning"]
    assert c["removed"] == {"missing_label": 2} and (c["rows_in"], c["rows_out"]) == (120, 118)
    assert c["flagged"] == {"wrong_type": 1} and c["examples"]["wrong_type"] == [{"row": 8, "column": "b"}]
    t = pq.read_table(tmp_path / "d" / "clean.parquet")
    x = np.column_stack([t.column(k).to_numpy(zero_copy_only=False) for k in "abc"]).astype(float)
    assert c["imputed"] == {"a": int(np.isnan(x[:, 0]).sum()), "b": int(np.isnan(x[:, 1]).sum())}
    assert c["imputed"] == {"a": 24, "b": 24 + 1}  # every 5th cell; b also 'abc' (data row 8)
    assert c["imputed_total"] == sum(c["imputed"].values())
    number, color = r["features"]["features"]
    train = x[t.column("__split__").to_numpy() == 0]
    imp = number["state"]["impute"]
    # Exact medians (the split fits in the sample): numpy's nanmedian of the training rows.
    np.testing.assert_allclose(imp["median"], np.nanmedian(train, axis=0), rtol=1e-6)
    assert imp["missing"] == np.isnan(train).sum(axis=0).tolist() and imp["missing"][2] == 0
    assert imp["indicators"] == ["a", "b"] and imp["median_estimate"] == "exact"
    # The normalizer's statistics ignore the missing cells.
    norm = number["state"]["normalize"]
    np.testing.assert_allclose(norm["shift"], np.nanmean(train, axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm["scale"], np.nanstd(train, axis=0), rtol=1e-5)
    # "NA" and empty category cells are one value, __missing__.
    assert color["state"]["vocabulary"] == ["blue", "red", "__missing__", "__unknown__"]


def test_missing_drop_removes_rows_as_before(tmp_path, write_csv):
    r = prepared(tmp_path / "d", _data(write_csv(_table())), {"clean": {"missing": "drop"}})
    c = r["cleaning"]
    # a: i = 1, 6, ..; b: i = 3, 8, ..; 'abc' at i = 7; no y at i = 10 and 20.
    assert c["removed"] == {"nan_or_inf": 48, "wrong_type": 1, "missing_label": 2}
    assert c["rows_out"] == 69 and c["imputed"] == {}
    assert r["features"]["features"][0]["state"]["impute"]["indicators"] == []


def test_fail_stops_on_a_non_number_but_not_on_a_missing_cell_and_inf_stays_invalid(
        tmp_path, write_csv):
    rows = [["a", "b", "y"], [1, 5, 0], ["NA", 6, 1], [2, 7, 0], ["", 8, 1], [3, 9, 0],
            ["oops", 10, 1]]
    with pytest.raises(DataError) as info:
        prepared(tmp_path / "d", {"source": f"csv:{write_csv(rows)}", "target": "y"},
                 {"clean": {"invalid": "fail"}})
    assert (info.value.row, info.value.column) == (6, "a")
    assert "use 'drop' to impute such cells as missing" in str(info.value)
    r = prepared(tmp_path / "e", {"source": f"csv:{write_csv(rows[:-1] + [['inf', 11, 1]])}",
                                  "target": "y"})
    assert r["cleaning"]["removed"] == {"infinite": 1} and r["cleaning"]["imputed"] == {"a": 2}


def test_an_unknown_missing_policy_is_a_recipe_error_naming_the_choices(tmp_path, write_csv):
    with pytest.raises(RecipeError) as info:
        prepared(tmp_path / "d", _data(write_csv(_table(20))), {"clean": {"missing": "keep"}})
    msg = str(info.value)
    assert "preprocess.clean.missing" in msg and "impute" in msg and "drop" in msg


def test_streamed_statistics_skip_nan_and_the_sampled_median_is_within_its_bound():
    rng = np.random.default_rng(1)
    x = rng.lognormal(size=(20_000, 3))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 2] = np.nan  # a column never present
    s = RunningStats(3, sample=2_000)
    for part in np.array_split(x, 7):
        s.update(part)
    np.testing.assert_allclose(s.mean[:2], np.nanmean(x[:, :2], axis=0))
    np.testing.assert_allclose(s.std[:2], np.nanstd(x[:, :2], axis=0))
    np.testing.assert_allclose(s.min[:2], np.nanmin(x[:, :2], axis=0))
    assert s.missing.tolist() == np.isnan(x).sum(axis=0).tolist()
    # ~1,400 present values per column sampled: rank error sqrt(0.25 / 1400) = 1.3 points;
    # allow 4 standard errors.
    med = s.quantile(0.5)
    for j in range(2):
        col = x[:, j][~np.isnan(x[:, j])]
        assert abs((col < med[j]).mean() - 0.5) < 4 * np.sqrt(0.25 / 1400)
    assert med[2] == 0
    n = Normalizer("minmax").fit(x)
    assert np.isfinite(n.shift_).all() and np.isfinite(n.scale_).all()


def _fitted(x: np.ndarray) -> NumberFeature:
    f = NumberFeature("features", ["a", "b", "c"])
    for part in np.array_split(x, 3):
        f.partial_fit(part)
    return f


def _rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    train = rng.normal(3, 2, size=(50, 3))
    train[::4, 0] = np.nan
    train[1::7, 2] = np.nan  # b (column 1) is never missing in training
    new = rng.normal(3, 2, size=(6, 3))
    new[0] = np.nan
    new[1, 1] = np.nan
    new[2, 2] = np.nan
    return train, new


def test_the_graph_imputes_medians_normalizes_and_appends_indicators():
    train, new = _rows()
    f = _fitted(train)
    assert f.width() == 5 and f.state_dict()["impute"]["indicators"] == ["a", "c"]
    out = f.module()(torch.from_numpy(f.encode(new)["features"])).numpy()
    median = np.nanmedian(train, axis=0)
    filled = np.where(np.isnan(new), median, new)
    expect = (filled - np.nanmean(train, axis=0)) / np.nanstd(train, axis=0)
    np.testing.assert_allclose(out[:, :3], expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[:, 3:], np.isnan(new[:, [0, 2]]).astype(np.float32))
    # A state written before imputation still loads: NaN becomes the mean, no indicators.
    old = {"normalize": f.state_dict()["normalize"]}
    g = NumberFeature("features", ["a", "b", "c"]).load_state_dict(old)
    assert g.width() == 3
    assert torch.isfinite(g.module()(torch.from_numpy(new.astype(np.float32)))).all()


def test_onnx_export_keeps_isnan_where_and_onnxruntime_matches_torch_on_nan_rows(tmp_path):
    import onnx
    import onnxruntime as ort

    from danlu.export.onnx import export_onnx
    from danlu.models.packaged import Packaged, predict

    train, new = _rows()
    number = _fitted(train)
    color = CategoryFeature("color", ["color"]).partial_fit(np.array(["r", "g", None], object))
    head = CategoryHead("y", ["no", "yes"])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(number.width() + color.width(), 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 2))
    module = Packaged([number, color], net, head)
    path = export_onnx(module, tmp_path / "model.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"IsNaN", "Where"} <= ops
    values = {"features": new, "color": np.array(["r", None, "zz", "g", "NA", "r"], object)}
    probs, labels = predict(module, values)
    feeds = {k: v for f in module.features for k, v in f.encode(values[f.name]).items()}
    assert np.isnan(feeds["features"]).any()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert np.isfinite(got[0]).all()
    np.testing.assert_allclose(got[0], probs, atol=1e-6)
    np.testing.assert_array_equal(got[1], labels)


def test_noise_and_mixup_stay_finite_on_rows_with_missing_cells():
    from danlu.data.augment import build_augmenter
    from danlu.data.config import AugmentStep
    from danlu.models.packaged import Encoding

    train, new = _rows()
    f = _fitted(train)
    x = Encoding([f]).network_input({"features": np.vstack([train, new])})
    assert torch.isfinite(x).all()
    steps = [AugmentStep.model_validate(s) for s in ({"noise": {"std": 0.1, "p": 1.0}},
                                                    {"mixup": {"alpha": 0.4, "p": 1.0}})]
    aug = build_augmenter(steps, [f], CategoryHead("y", ["no", "yes"]), seed=0)
    out, soft = aug(x, torch.zeros(len(x), dtype=torch.long))
    assert out.shape == x.shape and torch.isfinite(out).all() and torch.isfinite(soft).all()
