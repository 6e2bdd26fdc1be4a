"""Contracts every registry entry must keep, each entry run against real fitted features:

- every model family (`models`): built for its features, wrapped in `Packaged`, exported to ONNX,
  answers in ONNX Runtime (fed by the features' own `encode`) what torch `predict` answers;
- every feature type (`features`): `encode` needs no torch and gives exactly the tensors its
  graph part declares; describe/load_state_dict round-trips;
- every head (`heads`): its outputs are what it declares; describe/load round-trips;
- for each feature type and head, the package schema round-trips: build_package -> read_meta ->
  load_package give back the same features, head and contract.

Adding a family, a feature type or a head means adding its case here (the first tests say so).
The text case is the session's tiny text run's fitted text feature (MiniLM's tokenizer, 32
tokens) and its test texts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from danlu.features import column_inputs, load_features, load_head
from danlu.features import features as FEATURES
from danlu.features import heads as HEADS
from danlu.features.base import NOTE, Feature, count
from danlu.models import models as MODELS

SRC = Path(__file__).resolve().parents[2] / "src"
LABELS = ["ant", "bee", "cicada"]
ONNX_TYPES = {"tensor(float)": "FP32", "tensor(int64)": "INT64", "tensor(string)": "BYTES"}


@dataclass
class Case:
    """Fitted features and some raw client values of each, as a run's test split gives them."""

    features: list[Feature]
    values: dict[str, np.ndarray]
    folder: Path | None = None  # where the features' files (a tokenizer.json) are


def _digits(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data[:n].astype(np.float64)


def number_case(rows: int = 37) -> Case:
    rng = np.random.default_rng(0)
    x = rng.normal([5.0, -2.0, 100.0], [1.0, 0.1, 30.0], size=(200, 3))
    f = FEATURES["number"]("features", ["height", "slope", "rain"],
                                {"normalize": "zscore", "bins": 4})
    return Case([f.partial_fit(x[:150])], {"features": x[150:150 + rows]})


def image_case(rows: int = 37) -> Case:
    x = _digits(300)
    f = FEATURES["image"]("pixels", [f"p{i}" for i in range(64)],
                          {"shape": [1, 8, 8], "normalize": "zscore", "per": "channel"})
    return Case([f.partial_fit(x[:200])], {"pixels": x[200:200 + rows]})


def category_case(rows: int = 37) -> Case:
    seen = np.array(["red", "green", "blue", None, "green", "red"] * 20, dtype=object)
    f = FEATURES["category"]("colour", ["colour"]).partial_fit(seen)
    sent = np.array((["red", "blue", None, "mauve", "", "green", 3.0] * 6)[:rows], dtype=object)
    return Case([f], {"colour": sent})  # None, "", a number and unseen "mauve" included


def binary_case(rows: int = 37) -> Case:
    """Two values seen in training; sent: both, missing (None, "", "NA") and an unseen "maybe"."""
    seen = np.array(["yes", "no", None, "no", "yes", "yes"] * 20, dtype=object)
    f = FEATURES["binary"]("smoker", ["smoker"]).partial_fit(seen)
    sent = np.array((["no", "yes", None, "maybe", "", " yes", "NA"] * 6)[:rows], dtype=object)
    return Case([f], {"smoker": sent})


def large_category_case(rows: int = 37) -> Case:
    """A category with a vocabulary above ONEHOT_MAX: a learned embedding inside the network."""
    seen = np.array([f"town{i % 80}" for i in range(400)], dtype=object)
    f = FEATURES["category"]("town", ["town"]).partial_fit(seen)
    sent = np.array([f"town{i * 7 % 90}" for i in range(rows)], dtype=object)  # some unseen
    return Case([f], {"town": sent})


def hashed_text_case(rows: int = 37) -> Case:
    """A text column beside a table's columns: the MLP binds the hashing encoder."""
    f = FEATURES["text"]("review", ["review"]).bind_hashing(buckets=512, max_tokens=12, dim=8)
    words = ["good", "bad", "screen", "battery", "never", "again", "fast", "ok"]
    sent = np.array([" ".join(words[(i + j) % 8] for j in range(i % 9)) for i in range(rows)],
                    dtype=object)  # "" (no words) and texts cut at 12 ids included
    return Case([f], {"review": sent})


@pytest.fixture(scope="session")
def text_case(text_run) -> Case:
    """The tiny text run's fitted text feature (model.json of train/model/) and its test texts."""
    from danlu.data.stage import load_splits
    from danlu.runs import Run, read_json

    folder = text_run.run_dir / "train" / "model"
    features = load_features(read_json(folder / "model.json")["features"], folder)
    texts = load_splits(Run.open(text_run.run_dir)).values["test"]["text"][:12]
    texts = np.concatenate([texts, np.array(["ok", "Shares rose."], dtype=object)])
    return Case(features, {"text": texts}, folder)


FEATURE_CASES = {"number": number_case, "image": image_case, "category": category_case,
                 "binary": binary_case, "text": None}  # text: the text_case fixture


def feature_case(type_name: str, request) -> Case:
    make = FEATURE_CASES[type_name]
    return request.getfixturevalue("text_case") if make is None else make()


def family_case(name: str, request) -> tuple[Any, Case]:
    """A small config of the family and the features it is meant for."""
    from danlu.models.cnn import CNNConfig
    from danlu.models.mlp import MLPConfig
    from danlu.models.transformer import TransformerConfig

    if name == "mlp":  # a table: numbers, a one-hot category, an embedded one, a text, a binary
        cases = [number_case(), category_case(), large_category_case(), hashed_text_case(),
                 binary_case()]
        assert cases[2].features[0].embedded and not cases[1].features[0].embedded
        return MLPConfig(hidden=[16, 8]), Case([f for c in cases for f in c.features],
                                               {k: v for c in cases for k, v in c.values.items()})
    if name == "cnn":
        return CNNConfig(channels=[4, 8], hidden=16), image_case()
    if name == "transformer":
        return TransformerConfig(layers=[0], max_length=32), request.getfixturevalue("text_case")
    raise AssertionError(f"no contract case for model family {name!r}: add one here")


FAMILIES = ["cnn", "mlp", "transformer"]


def _number_head():
    """A regression head fitted on targets of mean 10 and std 2, trained with Huber."""
    return HEADS["number"]("price", [], {"loss": "huber"}).fit(np.array([8.0, 12.0]))


# head type -> (a fitted head, targets of 5 rows, a metric its scores give and its range)
HEAD_CASES = {
    "category": (lambda: HEADS["category"]("label", LABELS), np.array([0, 1, 2, 1, 0]),
                 ("accuracy", 0.0, 1.0)),
    "number": (_number_head, np.array([9.0, 11.5, 10.0, 7.0, 13.0]),
               ("rmse", 0.0, float("inf"))),
}


def _danlus(registry, of=lambda entry: entry) -> list[str]:
    """danlu's own entries (a plug-in registered by another test has its own contract:
    tests/contracts/test_plugins.py)."""
    return sorted(n for n in registry.names() if of(registry[n]).__module__.startswith("danlu."))


def test_every_registry_entry_has_a_contract_case() -> None:
    assert _danlus(MODELS, type) == FAMILIES
    assert _danlus(FEATURES) == sorted(FEATURE_CASES)
    assert _danlus(HEADS) == sorted(HEAD_CASES)


# ---- model families --------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_exports_to_onnx_and_onnx_runtime_answers_as_torch(name: str, request,
                                                                    tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from danlu.export.config import ExportConfig
    from danlu.export.onnx import export_onnx
    from danlu.models.packaged import Packaged, predict

    fam = MODELS[name]
    cfg, case = family_case(name, request)
    fam.check(cfg, case.features)
    fam.bind(cfg, case.features)
    head = HEADS["category"]("label", LABELS)
    torch.manual_seed(0)
    module = Packaged(case.features, fam.build(cfg, case.features, head), head).eval()
    probs, labels = predict(module, case.values)
    path = export_onnx(module, tmp_path / "model.onnx", ExportConfig().opset)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == module.input_names
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "label"]
    for rows in (np.arange(count(case.values)), np.array([1])):  # a batch, and a single row
        feed = {k: v for f in case.features for k, v in f.encode(case.values[f.name][rows]).items()
                if not k.startswith(NOTE)}
        got_probs, got_labels = sess.run(["probabilities", "label"], feed)
        np.testing.assert_allclose(got_probs, probs[rows], atol=1e-5)
        np.testing.assert_array_equal(got_labels, labels[rows])
    assert probs.shape == (count(case.values), len(LABELS))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


# ---- feature types -----------------------------------------------------------------------------

ENCODE_ALONE = """
import json, sys
import numpy as np
from danlu.features import load_features
spec = json.loads(open(sys.argv[1]).read())
(f,) = load_features([spec["feature"]], spec["folder"])
values = np.array(spec["values"], dtype=object if spec["strings"] else np.float64)
out = {k: v.tolist() for k, v in f.encode(values).items()}
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print(json.dumps({"encoded": out, "torch": bad}))
"""


@pytest.mark.parametrize("type_name", sorted(FEATURE_CASES))
def test_a_feature_encodes_without_torch_exactly_what_its_graph_part_takes(
        type_name: str, request, tmp_path: Path) -> None:
    from danlu.serve.package import DATATYPES

    case = feature_case(type_name, request)
    (f,) = case.features[:1]
    values = case.values[f.name]
    encoded = f.encode(values)
    graph = f.graph_inputs()
    # the graph inputs, each with its declared datatype and rank, one row per value
    assert [k for k in encoded if not k.startswith(NOTE)] == [s["name"] for s in graph]
    for s in graph:
        arr = encoded[s["name"]]
        assert arr.dtype == DATATYPES[s["datatype"]] and arr.ndim == len(s["shape"]), s
        assert len(arr) == len(values)
        assert all(d == -1 or d == n for d, n in zip(s["shape"], arr.shape, strict=True))
    assert f.client_input()["name"] == f.name
    # the same in a fresh interpreter that loads the feature from describe() and imports no torch
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"feature": f.describe(), "folder": str(case.folder or tmp_path),
                                "strings": values.dtype == object, "values": values.tolist()}))
    proc = subprocess.run([sys.executable, "-c", ENCODE_ALONE, str(spec)], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    alone = json.loads(proc.stdout)
    assert alone["torch"] == []
    for k, v in encoded.items():
        np.testing.assert_array_equal(np.asarray(alone["encoded"][k]), v, err_msg=k)


@pytest.mark.parametrize("type_name", sorted(FEATURE_CASES))
def test_a_feature_round_trips_through_describe_and_load_state_dict(type_name: str,
                                                                    request) -> None:
    case = feature_case(type_name, request)
    (f,) = case.features[:1]
    (again,) = load_features([json.loads(json.dumps(f.describe()))], case.folder)
    assert type(again) is type(f) and again.describe() == f.describe()
    assert again.form() == f.form() and again.graph_inputs() == f.graph_inputs()
    values = case.values[f.name]
    for k, v in f.encode(values).items():
        np.testing.assert_array_equal(again.encode(values)[k], v)


@pytest.mark.parametrize("type_name", sorted(FEATURE_CASES))
def test_a_feature_takes_its_raw_columns_back_as_its_client_input(type_name: str,
                                                                   request) -> None:
    """The raw-row form (danlu-model.json `columns`): a client's values split into the
    feature's column inputs, a value per row each, are assembled back into its client input."""
    case = feature_case(type_name, request)
    (f,) = case.features[:1]
    values, specs = case.values[f.name], f.column_inputs()
    whole = len(specs) == 1 and len(specs[0]["shape"]) == len(f.client_input()["shape"])
    assert whole or all(s["shape"] == [-1] for s in specs)
    split = {specs[0]["name"]: values} if whole else {
        s["name"]: (values[:, j] if values.ndim == 2 else values) for j, s in enumerate(specs)}
    back = f.from_columns(split)
    assert back.shape == values.shape
    np.testing.assert_array_equal(back, values)


@pytest.mark.parametrize("head_type", sorted(HEAD_CASES))
def test_a_head_outputs_what_it_declares_and_round_trips(head_type: str) -> None:
    import torch

    make, y, (metric, low, high) = HEAD_CASES[head_type]
    head = make()
    again = load_head(json.loads(json.dumps(head.describe())))
    assert type(again) is type(head) and again.describe() == head.describe()
    logits = torch.randn(5, head.size, generator=torch.Generator().manual_seed(0))
    outputs = head.module()(logits)
    specs = head.outputs()
    assert len(outputs) == len(specs)
    torch_types = {"FP32": torch.float32, "INT64": torch.int64}
    for out, s in zip(outputs, specs, strict=True):
        assert out.dtype == torch_types[s["datatype"]] and out.ndim == len(s["shape"]), s
        assert all(d == -1 or d == n for d, n in zip(s["shape"], out.shape, strict=True)), s
    loss = head.loss()(logits, torch.from_numpy(y))
    assert loss.ndim == 0 and torch.isfinite(loss)
    scores = head.scores(outputs[0].numpy(), y)
    assert low <= scores[metric] <= high
    assert all(m in scores for m in head.metric_names)  # what early stopping may watch
    rows = head.rows({s["name"]: o.numpy() for s, o in zip(specs, outputs, strict=True)})
    assert len(rows) == 5 and all(isinstance(r, dict) for r in rows)  # /v1's predictions


# ---- the package schema, per feature type and head ---------------------------------------------

def _family_for(type_name: str) -> str:
    """The most specific family that takes this feature type (asked of the registry, not
    assumed): the fewest accepted types, then the name."""
    return min((n for n in MODELS.names() if type_name in MODELS[n].accepts),
               key=lambda n: (len(MODELS[n].accepts), n))


@pytest.mark.parametrize(("type_name", "head_type"), [
    *((t, "category") for t in sorted(FEATURE_CASES)), ("number", "number")])
def test_the_package_schema_round_trips(type_name: str, head_type: str, request,
                                        tmp_path: Path) -> None:
    """A model of a family that takes the feature, saved as a model folder and packaged for its
    first runtime: danlu-model.json reads back valid, and the served package has the same
    features, head and contract."""
    import torch

    from danlu.export.config import ExportConfig
    from danlu.export.package import build_package
    from danlu.models.load import load_model, save_model
    from danlu.package import read_meta
    from danlu.serve import load_package

    case = feature_case(type_name, request)
    fam = MODELS[_family_for(type_name)]
    cfg = fam.config.model_validate({"arch": fam.name, **(
        {"layers": [0], "max_length": 32} if fam.name == "transformer" else {})})
    fam.bind(cfg, case.features)
    make, _, _ = HEAD_CASES[head_type]
    head = make()
    torch.manual_seed(0)
    folder = save_model(tmp_path / "model", cfg, fam.build(cfg, case.features, head),
                        case.features, head)
    y = np.arange(count(case.values)) % len(LABELS)
    before = torch.get_num_threads()
    try:
        written = build_package(tmp_path / "package", load_model(folder), case.values, y,
                                ExportConfig(latency_runs=3), runtimes=[fam.runtimes[0]],
                                name=f"contract-{type_name}")
    finally:
        torch.set_num_threads(before)
    meta = read_meta(tmp_path / "package")
    assert meta.dump() == written
    package = load_package(tmp_path / "package")
    assert [f.describe() for f in package.features] == [f.describe() for f in case.features]
    assert [s.to_json() for s in package.inputs] == [f.client_input() for f in case.features]
    assert [s.to_json() for s in package.columns] == column_inputs(case.features)
    assert [s.to_json() for s in package.model_inputs] == [s for f in case.features
                                                           for s in f.graph_inputs()]
    assert [s.to_json() for s in package.outputs] == head.outputs()
    assert load_head(meta.head.model_dump()).describe() == head.describe()
    assert package.labels == head.labels and package.runtime == fam.runtimes[0]
    assert package.head.describe() == head.describe() and meta.task == head.task
    for f in case.features:  # the files a feature needs travel with the package
        assert all((tmp_path / "package" / Path(a).name).is_file() for a in f.assets())
