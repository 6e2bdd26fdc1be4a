"""A table package takes raw rows (issue 14, item 5): /v1 objects by column name and arrays in
column order, v2 one input per column, with strings, numbers and nulls as the CSV had them. The
oracle is the run's own evaluation of the test split (eval/predictions.npz); the server is the
session's real one (iris with its `garden` category, blank in every 7th row)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.serve.package import load_package

from .conftest import Evaluation, outputs_by_name, probabilities

ATOL = 1e-4  # float32 ONNX Runtime vs the float32 torch model evaluation ran
PREDICT = "/v1/models/iris:predict"
NUMBERS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
COLUMNS = [*NUMBERS, "garden"]


def raw_rows(ev: Evaluation) -> list[dict]:
    """The test split as a client has it: {column: value}, a blank garden as null."""
    return [{**dict(zip(NUMBERS, x.tolist(), strict=True)), "garden": g or None}
            for x, g in zip(ev.values["features"], ev.values["garden"], strict=True)]


def v1_probabilities(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    return np.array([list(p["probabilities"].values()) for p in preds])


def test_the_package_lists_its_columns_in_the_source_order(table_package: Path) -> None:
    meta = json.loads((table_package / "danlu-model.json").read_text())
    assert meta["columns"] == [{"name": c, "datatype": "FP32", "shape": [-1]} for c in NUMBERS] \
        + [{"name": "garden", "datatype": "BYTES", "shape": [-1]}]


def test_columns_keep_the_source_order_and_each_feature_takes_its_own() -> None:
    """diamonds-like: numbers and categories interleaved in the source. The raw row keeps the
    source's order; assembly stacks the numbers in the number feature's own column order."""
    from danlu.data.config import FeatureEntry
    from danlu.export.package import column_order
    from danlu.features import build_features, column_inputs

    entries = {"carat": FeatureEntry(type="number"), "cut": FeatureEntry(type="category"),
               "depth": FeatureEntry(type="number"), "note": FeatureEntry(type="text")}
    feats = build_features([(k, e.type, [k], {}) for k, e in entries.items()])
    assert [f.name for f in feats] == ["features", "cut", "note"]
    specs = column_inputs(feats, column_order(entries))
    assert [(s["name"], s["datatype"], s["shape"]) for s in specs] == [
        ("carat", "FP32", [-1]), ("cut", "BYTES", [-1]), ("depth", "FP32", [-1]),
        ("note", "BYTES", [-1])]
    values = {"carat": np.array([0.3, np.nan], np.float32), "depth": np.array([61.0, 62.5], np.float32),
              "cut": np.array(["Ideal", None], dtype=object),
              "note": np.array(["nice", None], dtype=object)}
    inputs = {f.name: f.from_columns(values) for f in feats}
    assert inputs["features"].dtype == np.float32
    np.testing.assert_array_equal(inputs["features"], np.float32([[0.3, 61.0], [np.nan, 62.5]]))
    assert inputs["cut"].tolist() == ["Ideal", None] and inputs["note"].tolist() == ["nice", ""]


def test_assembly_puts_missing_values_where_the_features_expect_them(table_package: Path) -> None:
    pkg = load_package(table_package)
    cols = {c: np.array([1.0, 2.0], np.float32) for c in NUMBERS}
    cols["sepal_width"] = np.array([np.nan, 3.0], np.float32)  # a null: NaN, imputed by the model
    cols["garden"] = np.array(["kew", None], dtype=object)
    inputs = pkg.assemble(cols)
    assert inputs["features"].dtype == np.float32 and inputs["features"].shape == (2, 4)
    assert np.isnan(inputs["features"][0, 1]) and inputs["features"][1].tolist() == [2, 3, 2, 2]
    assert inputs["garden"].tolist() == ["kew", None]


def test_v1_objects_with_strings_and_nulls_answer_as_evaluated(client: httpx.Client,
                                                               table_eval: Evaluation) -> None:
    rows = raw_rows(table_eval)
    assert any(r["garden"] is None for r in rows)  # the blank category reaches the server
    rows[0] = {k: v for k, v in rows[0].items() if k != "garden" or v is not None}  # missing key
    rows[1] = {**rows[1], "sepal_length": str(rows[1]["sepal_length"])}  # a number as text
    got = v1_probabilities(client.post(PREDICT, json={"instances": rows}))
    np.testing.assert_allclose(got, table_eval.probs, atol=ATOL)


def test_v1_objects_and_the_per_input_form_agree(client: httpx.Client,
                                                 table_eval: Evaluation) -> None:
    rows = raw_rows(table_eval)[:8]
    per_input = [{"features": [r[c] for c in NUMBERS], "garden": r["garden"] or ""} for r in rows]
    a = client.post(PREDICT, json={"instances": rows}).json()
    b = client.post(PREDICT, json={"instances": per_input}).json()
    assert a == b


def test_v1_arrays_in_column_order_and_columns_by_name(client: httpx.Client,
                                                       table_eval: Evaluation) -> None:
    rows = raw_rows(table_eval)
    arrays = [[r[c] for c in COLUMNS] for r in rows]
    got = v1_probabilities(client.post(PREDICT, json={"instances": arrays}))
    np.testing.assert_allclose(got, table_eval.probs, atol=ATOL)
    by_column = {c: [r[c] for r in rows] for c in COLUMNS}
    resp = client.post(PREDICT, json={"inputs": by_column})
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["outputs"]["probabilities"], table_eval.probs, atol=ATOL)


def test_v2_one_input_per_column_with_nulls_answers_as_evaluated(client: httpx.Client,
                                                                 table_eval: Evaluation) -> None:
    rows = raw_rows(table_eval)
    body = {"inputs": [{"name": c, "datatype": "FP32" if c in NUMBERS else "BYTES",
                        "shape": [len(rows)], "data": [r[c] for r in rows]} for c in COLUMNS]}
    out = outputs_by_name(client.post("/v2/models/iris/infer", json=body))
    np.testing.assert_array_equal(out["label"]["data"], table_eval.labels)
    np.testing.assert_allclose(probabilities(out), table_eval.probs, atol=ATOL)


def test_v2_metadata_lists_the_columns_and_the_feature_inputs(client: httpx.Client) -> None:
    meta = client.get("/v2/models/iris").json()
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == \
        [(c, "FP32", [-1]) for c in NUMBERS] + [("garden", "BYTES", [-1])]
    assert meta["parameters"]["feature_inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "garden", "datatype": "BYTES", "shape": [-1]}]


ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2,
       "garden": "kew"}


def _v2(**changes) -> dict:
    """A v2 request by column for ROW, with some inputs changed (None: left out)."""
    inputs = []
    for c, v in ROW.items():
        item = {"name": c, "datatype": "FP32" if c in NUMBERS else "BYTES", "shape": [1],
                "data": [v]}
        change = changes.get(c, {})
        if change is not None:
            inputs.append({**item, **change})
    return {"inputs": inputs + changes.get("extra", [])}


BAD = [  # (id, path, body, words the 400's message must contain)
    ("unknown-column", PREDICT, {"instances": [{**ROW, "colour": "red"}]}, ["colour", "garden"]),
    ("text-in-number-column", PREDICT, {"instances": [{**ROW, "petal_width": "wide"}]},
     ["petal_width", "wide", "not a number"]),
    ("object-in-category-column", PREDICT, {"instances": [{**ROW, "garden": {"a": 1}}]},
     ["garden", "string"]),
    ("bool-in-number-column", PREDICT, {"instances": [{**ROW, "sepal_length": True}]},
     ["sepal_length", "true"]),
    ("array-too-short", PREDICT, {"instances": [[5.1, 3.5, 1.4, 0.2]]},
     ["4 values", "5", "garden"]),
    ("array-text-in-number", PREDICT, {"instances": [["x", 3.5, 1.4, 0.2, "kew"]]},
     ["sepal_length", "not a number"]),
    ("columns-unequal", PREDICT, {"inputs": {"sepal_length": [1, 2], "garden": ["kew"]}},
     ["garden"]),
    ("v2-unknown-column", "/v2/models/iris/infer",
     _v2(extra=[{"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["red"]}]),
     ["colour", "sepal_length (FP32 [-1])"]),
    ("v2-missing-column", "/v2/models/iris/infer", _v2(petal_width=None), ["petal_width"]),
    ("v2-text-in-number-column", "/v2/models/iris/infer",
     _v2(petal_width={"datatype": "BYTES", "data": ["wide"]}), ["petal_width", "FP32"]),
    ("v2-rows-differ", "/v2/models/iris/infer",
     _v2(garden={"shape": [2], "data": ["kew", "kew"]}), ["garden: 2"]),
    ("v2-infinity", "/v2/models/iris/infer", _v2(sepal_width={"data": [math.inf]}),
     ["sepal_width", "finite"]),
]


@pytest.mark.parametrize("path,body,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_raw_row_is_a_400_naming_the_column(client: httpx.Client, path: str, body: dict,
                                                  words: list[str]) -> None:
    resp = client.post(path, content=json.dumps(body).encode())
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    for word in words:
        assert word in error, f"{word!r} not in {error!r}"


def test_a_missing_number_is_imputed_in_the_graph(client: httpx.Client) -> None:
    """null in a number column reaches the model as NaN; the package's graph puts the training
    median in (and its missing indicator, where the column had missing values in training)."""
    resp = client.post(PREDICT, json={"instances": [{**ROW, "sepal_width": None}, ROW]})
    assert resp.status_code == 200, resp.text
    missing, full = resp.json()["predictions"]
    assert all(math.isfinite(v) for v in missing["probabilities"].values())
    assert missing["probabilities"] != full["probabilities"]  # the median, not the sent 3.5


def test_an_unseen_category_is_answered_and_counted(client: httpx.Client, server: str,
                                                    table_run) -> None:
    from danlu.runs import read_json

    from .conftest import metric

    before = metric(server, "danlu_unseen_values_total", model="iris", feature="garden")
    resp = client.post(PREDICT, json={"instances": [{**ROW, "garden": "versailles"}, ROW]})
    assert resp.status_code == 200, resp.text
    assert metric(server, "danlu_unseen_values_total", model="iris",
                  feature="garden") == before + 1
    # evaluation counts them too: every test garden was seen in training
    assert read_json(table_run.run_dir / "eval/metrics.json")["test"]["unseen"] == {"garden": 0}
