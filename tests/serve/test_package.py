"""Loading a model package that danlu wrote: folder resolution, danlu-model.json checks (pydantic,
the key named), ONNX contract checks, the runtime export measured, and one schema-1 package.

Every broken package here is a copy of a real one with the one field or file under test changed
(conftest.copy_package)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from danlu.errors import DanluError
from danlu.serve import ServeConfig, load_package
from danlu.serve.runtimes import load_runtime

from .conftest import (
    DELETE,
    copy_package,
    digits_body,
    outputs_by_name,
    probabilities,
    running_server,
    text_body,
)

DIGITS = [str(d) for d in range(10)]


@pytest.fixture
def broken(digits_package: Path, tmp_path: Path):
    """A copy of the digits package with danlu-model.json changed at the given key paths."""
    def make(changes: dict | None = None, name: str = "pkg") -> Path:
        return copy_package(digits_package, tmp_path / name, changes)
    return make


def test_loads_a_package_folder(digits_package: Path) -> None:
    pkg = load_package(digits_package)
    assert (pkg.name, pkg.version, pkg.labels, pkg.dir) == ("digits", "1", DIGITS, digits_package)
    assert [s.to_json() for s in pkg.inputs] == [
        {"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert [s.name for s in pkg.outputs] == ["probabilities", "label"]
    assert [(f.name, f.type, f.shape) for f in pkg.features] == [("pixels", "image", [1, 8, 8])]
    assert pkg.meta["preprocessing"] == {"in_graph": ["pixels"], "encoded_by_server": []}


def test_text_and_table_packages_list_what_the_server_encodes(text_package: Path,
                                                              table_package: Path) -> None:
    text, table = load_package(text_package), load_package(table_package)
    assert [s.to_json() for s in text.inputs] == [{"name": "text", "datatype": "BYTES",
                                                   "shape": [-1]}]
    assert [s.name for s in text.model_inputs] == ["input_ids", "attention_mask"]
    assert text.meta["preprocessing"] == {"in_graph": [], "encoded_by_server": ["text"]}
    assert [(s.name, s.datatype) for s in table.model_inputs] == [("features", "FP32"),
                                                                  ("garden", "INT64")]
    assert table.meta["preprocessing"] == {"in_graph": ["features"],
                                           "encoded_by_server": ["garden"]}


def test_a_run_folder_resolves_to_its_package(digits_run) -> None:
    assert load_package(digits_run.run_dir).dir == digits_run.package_dir


def test_a_folder_with_neither_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DanluError, match=r"danlu-model\.json.*package/") as e:
        load_package(tmp_path)
    assert "`danlu run RECIPE` writes package/" in str(e.value)  # a command that exists
    with pytest.raises(DanluError, match="no such folder"):
        load_package(tmp_path / "missing")


def test_labels_may_be_absent(broken) -> None:
    assert load_package(broken({"labels": DELETE})).labels is None


def test_version_may_be_an_int(broken) -> None:
    assert load_package(broken({"version": 3})).version == "3"


# What a user sees: the file, then the key path, the value and what was expected (read_meta).
@pytest.mark.parametrize("changes,words", [
    ({"schema_version": 3}, ["schema_version: got 3", "2"]),
    ({"schema_version": DELETE, "format": "danlu-model/2"},
     ["format: got 'danlu-model/2', expected 'danlu-model/1' or a schema_version"]),
    ({"name": ""}, ["name: got ''", "pattern"]),
    ({"name": "a:b"}, ["name: got 'a:b'", "^[^/:]+$"]),
    ({"inputs": []}, ["inputs: got []", "at least 1 item"]),
    ({"inputs[0].datatype": "FLOAT"},
     ["inputs[0].datatype: got 'FLOAT', expected", "'FP32'", "'BYTES'"]),
    ({"inputs[0].shape": [-2, 64]}, ["inputs[0].shape: got [-2, 64]", "-1 for any size"]),
    ({"outputs": lambda m: [m["outputs"][1]] * 2}, ["outputs: got", "unique tensor names"]),
    ({"labels": ["a", "b"]}, ["labels: got ['a', 'b']", "expected 10 names", "'probabilities' [-1, 10]"]),
    ({"artifacts": ["model.onnx"]}, ["artifacts: got ['model.onnx']", "dictionary"]),
    ({"features[0].input": DELETE}, ["features[0].input: got", "Field required"]),
    ({"runtimes.onnxruntime.passed": "maybe"},
     ["runtimes.onnxruntime.passed: got 'maybe'", "boolean"]),
    ({"head.labels": "0123456789"}, ["head.labels: got '0123456789'", "list"]),
    ({"features[0].type": "pixel"},
     ["features[0].type: got 'pixel', expected a feature type: one of", "image"]),
    ({"features[0].state": {}}, ["features[0].state", "'image' feature", "re-export"]),
])
def test_invalid_manifest_names_the_file_and_the_key(broken, changes: dict,
                                                     words: list[str]) -> None:
    pkg = broken(changes)
    with pytest.raises(DanluError) as info:
        load_package(pkg)
    message = str(info.value)
    assert message.startswith(f"{pkg / 'danlu-model.json'}: "), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_malformed_manifest_json(broken) -> None:
    folder = broken()
    (folder / "danlu-model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DanluError, match="not valid JSON"):
        load_package(folder)


def test_missing_onnx_file_fails_at_load(broken) -> None:
    folder = broken()
    (folder / "model.onnx").unlink()
    with pytest.raises(DanluError, match=r"model\.onnx: missing; danlu-model\.json names it"):
        load_runtime(load_package(folder))


def test_corrupt_onnx_file_fails_at_load(broken) -> None:
    folder = broken()
    (folder / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(DanluError, match=r"model\.onnx: ONNX Runtime cannot load it"):
        load_runtime(load_package(folder))


def test_a_text_package_without_its_tokenizer_fails_at_load_not_per_request(
        text_package: Path, tmp_path: Path) -> None:
    folder = copy_package(text_package, tmp_path / "text")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(DanluError, match=r"features\[0\] \('text'\) needs tokenizer\.json"):
        load_package(folder)


def test_a_corrupt_tokenizer_fails_at_load_not_per_request(text_package: Path,
                                                           tmp_path: Path) -> None:
    folder = copy_package(text_package, tmp_path / "text")
    (folder / "tokenizer.json").write_text("{not a tokenizer", encoding="utf-8")
    with pytest.raises(DanluError, match=r"features\[0\] \('text'\) cannot encode a value"):
        load_runtime(load_package(folder), ServeConfig(runtime="onnxruntime", intra_op_threads=1))


def test_a_missing_torch_folder_fails_when_the_torch_runtime_loads(text_package: Path,
                                                                  tmp_path: Path) -> None:
    folder = copy_package(text_package, tmp_path / "text")
    shutil.rmtree(folder / "hf")  # the torch runtime's model folder (artifacts.torch)
    package = load_package(folder)  # the ONNX runtimes do not need it
    load_runtime(package, ServeConfig(runtime="onnxruntime", intra_op_threads=1))
    with pytest.raises(DanluError, match=r"hf: missing; danlu-model\.json names it as the "
                                         r"'torch' artifact"):
        load_runtime(package, ServeConfig(runtime="torch"))


# danlu-model.json and the graph disagree: each is a DanluError at load naming both sides.
@pytest.mark.parametrize("changes,words", [
    ({"features[0].name": "image"}, ["declared input 'image' is not in the ONNX graph",
                                     "graph inputs: pixels"]),
    ({"features[0].columns": lambda m: m["features"][0]["columns"][:63]},
     ["[-1, 64] in the ONNX graph but [-1, 63]"]),
    ({"outputs[1].datatype": "INT32"}, ["output 'label' is INT64 in the ONNX graph but INT32"]),
    ({"outputs[0].shape": [-1, 9], "labels": list("012345678")},
     ["output 'probabilities' has shape [-1, 10] in the ONNX graph but [-1, 9]"]),
])
def test_onnx_graph_must_agree_with_the_manifest(broken, changes: dict, words: list[str]) -> None:
    with pytest.raises(DanluError) as info:
        load_runtime(load_package(broken(changes)))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_unknown_runtime_names_the_choices(broken) -> None:
    with pytest.raises(DanluError, match="runtime 'tensorrt' is not a runtime of this package; "
                                         "choose one of: onnxruntime"):
        load_runtime(load_package(broken({"runtime": "tensorrt"})))


def test_session_optimization_level_comes_from_the_package(broken) -> None:
    pkg = load_package(broken({"session": {"graph_optimization_level": "basic"}}, "basic"))
    runtime = load_runtime(pkg).inner  # the features' encoder wraps the ONNX Runtime engine
    assert runtime.session.get_session_options().graph_optimization_level.name == \
        "ORT_ENABLE_BASIC"
    bad = load_package(broken({"session": {"graph_optimization_level": "max"}}, "bad"))
    with pytest.raises(DanluError, match="graph_optimization_level.*'max'.*basic"):
        load_runtime(bad)


# ---- export measured what the server runs ----------------------------------------------------

@pytest.mark.parametrize("which", ["digits_package", "text_package"])
def test_the_runtime_served_is_the_one_export_measured(which: str, request) -> None:
    """Export loads each candidate through danlu.serve.runtimes.load_runtime and records its
    describe(); `danlu serve --threads N --runtime R` with export's threads builds the same
    object type with the same options."""
    import torch

    folder = request.getfixturevalue(which)
    meta = json.loads((folder / "danlu-model.json").read_text())
    threads = meta["runtime_choice"]["reference"]["threads"]  # export.threads
    package = load_package(folder)
    before = torch.get_num_threads()
    try:  # the torch runtime sets this process's torch threads, as it does in a server
        for name, entry in meta["runtimes"].items():
            cfg = ServeConfig(runtime=name, intra_op_threads=threads)
            assert load_runtime(package, cfg).describe() == entry["loaded"], name
            assert entry["loaded"]["runtime"] == name
    finally:
        torch.set_num_threads(before)
    assert meta["runtimes"][meta["runtime"]]["loaded"]["threads"] == threads


# ---- schema 1 --------------------------------------------------------------------------------

def schema_1(meta: dict) -> dict:
    """danlu-model.json as danlu wrote it before features existed (format danlu-model/1): the
    graph's own inputs, the normalizer under preprocessing, a text model's tokenizer under `text`."""
    old = {"format": "danlu-model/1", "name": meta["name"], "version": meta["version"],
           "task": meta["task"], "runtime": "onnxruntime",
           "artifacts": {"onnx": "model.onnx"}, "outputs": meta["outputs"],
           "labels": meta["labels"], "metrics": meta["metrics"], "provenance": {}}
    (feature,) = meta["features"]
    if feature["type"] == "text":
        old["inputs"] = [feature["input"]]
        old["artifacts"]["tokenizer"] = "tokenizer.json"
        old["text"] = {"max_length": feature["state"]["max_length"],
                       "tokenizer": "tokenizer.json",
                       "model_inputs": [s["name"] for s in feature["graph_inputs"]]}
        old["preprocessing"] = {"tokenize": {"max_length": feature["state"]["max_length"],
                                             "truncation": "right"}, "in_graph": False}
    else:
        old["inputs"] = feature["graph_inputs"]
        old["image_shape"] = feature["options"]["shape"]
        old["preprocessing"] = {"normalize": feature["state"]["normalize"]}
    return old


def test_a_schema_1_package_still_loads_and_serves(digits_package: Path, text_package: Path,
                                                   digits_eval, text_eval,
                                                   tmp_path: Path) -> None:
    """Old packages (the digits and text packages rewritten as danlu-model/1) are upgraded when
    read and answer as the current ones: what evaluation computed."""
    folders = []
    for src in (digits_package, text_package):
        folder = copy_package(src, tmp_path / src.parent.name)
        meta = json.loads((folder / "danlu-model.json").read_text())
        (folder / "danlu-model.json").write_text(json.dumps(schema_1(meta)))
        folders.append(folder)
    digits, text = (load_package(f) for f in folders)
    assert digits.meta["schema_version"] == 2 and digits.features == []  # inputs go as they are
    assert [f.type for f in text.features] == ["text"]  # the `text` section became a feature
    with running_server(folders, "--threads", "1") as (url, _):
        out = outputs_by_name(httpx.post(f"{url}/v2/models/digits/infer", timeout=60,
                                         json=digits_body(digits_eval.values["pixels"][:40])))
        assert out["label"]["data"] == digits_eval.labels[:40].tolist()
        texts = text_eval.values["text"].tolist()
        out = outputs_by_name(httpx.post(f"{url}/v2/models/{text.name}/infer",
                                         json=text_body(texts), timeout=120))
        np.testing.assert_allclose(probabilities(out), text_eval.probs, atol=1e-4)
        assert out["label"]["data"] == text_eval.labels.tolist()


# ---- ServeConfig --------------------------------------------------------------------------------

def test_serve_config_defaults_are_safe() -> None:
    cfg = ServeConfig()
    assert (cfg.host, cfg.port, cfg.intra_op_threads) == ("127.0.0.1", 8080, 0)


@pytest.mark.parametrize("changes", [{"port": 0}, {"port": 65536}, {"intra_op_threads": -1},
                                     {"no_such_field": 2}, {"max_batch_size": 0},
                                     {"max_queue_size": 0}, {"request_timeout_s": 0}])
def test_serve_config_refuses_bad_values(changes: dict) -> None:
    with pytest.raises(ValidationError):
        ServeConfig(**changes)


def test_serve_config_round_trips_as_data() -> None:
    cfg = ServeConfig(host="0.0.0.0", port=9000, intra_op_threads=2)
    assert ServeConfig(**json.loads(cfg.model_dump_json())) == cfg
