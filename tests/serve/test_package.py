"""Loading a model package: folder resolution, danlu-model.json checks, ONNX contract checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from danlu.errors import DanluError
from danlu.serve import ServeConfig, load_package
from danlu.serve.runtimes import load_runtime

from .conftest import LABELS, fragile_model


def test_loads_a_package_folder(packages: dict[str, Path]) -> None:
    pkg = load_package(packages["toy"])
    assert (pkg.name, pkg.version, pkg.labels, pkg.dir) == ("toy", "1", LABELS, packages["toy"])
    assert [s.to_json() for s in pkg.inputs] == [
        {"name": "pixels", "datatype": "FP32", "shape": [-1, 4]}]
    assert [s.name for s in pkg.outputs] == ["probabilities", "label"]
    assert pkg.meta["preprocessing"] == {"normalize": {"kind": "zscore"}}


def test_a_run_folder_resolves_to_its_package(packages: dict[str, Path]) -> None:
    assert load_package(packages["run"]).dir == packages["toy"]


def test_a_folder_with_neither_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DanluError, match=r"danlu-model\.json.*package/") as e:
        load_package(tmp_path)
    assert "`danlu run RECIPE` writes package/" in str(e.value)  # a command that exists
    with pytest.raises(DanluError, match="no such folder"):
        load_package(tmp_path / "missing")


def test_labels_may_be_absent(package_factory) -> None:
    assert load_package(package_factory(labels=None)).labels is None


def test_version_may_be_an_int(package_factory) -> None:
    assert load_package(package_factory(version=3)).version == "3"


@pytest.mark.parametrize("changes,words", [
    ({"format": "danlu-model/2"}, ["format", "danlu-model/1"]),
    ({"name": ""}, ["name"]),
    ({"name": "a:b"}, ["name", "':'"]),
    ({"inputs": []}, ["inputs", "non-empty"]),
    ({"inputs": [{"name": "pixels", "datatype": "FLOAT", "shape": [-1, 4]}]},
     ["inputs[0].datatype", "FLOAT", "FP32"]),
    ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-2, 4]}]},
     ["inputs[0].shape", "-1"]),
    ({"outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}] * 2}, ["unique"]),
    ({"labels": ["a", "b"]}, ["labels", "3 names"]),
    ({"artifacts": ["model.onnx"]}, ["artifacts"]),
])
def test_invalid_manifest_names_the_key(package_factory, changes: dict, words: list[str]) -> None:
    with pytest.raises(DanluError) as info:
        load_package(package_factory(**changes))
    for word in words:
        assert word in str(info.value)


def test_malformed_manifest_json(package_factory) -> None:
    folder = package_factory()
    (folder / "danlu-model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DanluError, match="not valid JSON"):
        load_package(folder)


def test_missing_onnx_file_fails_at_load(package_factory) -> None:
    folder = package_factory()
    (folder / "model.onnx").unlink()
    with pytest.raises(DanluError, match=r"model\.onnx: missing"):
        load_runtime(load_package(folder))


def test_corrupt_onnx_file_fails_at_load(package_factory) -> None:
    folder = package_factory()
    (folder / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(DanluError, match="cannot load"):
        load_runtime(load_package(folder))


@pytest.mark.parametrize("changes,words", [
    ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 4]}]}, ["image", "not in"]),
    ({"inputs": [{"name": "pixels", "datatype": "FP64", "shape": [-1, 4]}]}, ["FP32", "FP64"]),
    ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 5]}]},
     ["[-1, 4]", "[-1, 5]"]),
    ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1]}]}, ["[-1]"]),
    ({"outputs": [{"name": "label", "datatype": "INT32", "shape": [-1]}]}, ["INT64", "INT32"]),
    ({"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3, 1]}]},
     ["[-1, 3, 1]"]),
])
def test_onnx_graph_must_agree_with_the_manifest(package_factory, changes: dict,
                                                 words: list[str]) -> None:
    with pytest.raises(DanluError) as info:
        load_runtime(load_package(package_factory(**changes)))
    for word in words:
        assert word in str(info.value)


def test_a_fixed_graph_dim_may_be_declared_variable_only_if_the_graph_agrees(
        package_factory) -> None:
    # fragile's output y is [2] in the graph: declaring it [-1] would promise other sizes.
    meta = {"name": "fragile", "labels": None,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}
    with pytest.raises(DanluError, match=r"\[2\]"):
        load_runtime(load_package(package_factory(model=fragile_model(), **meta)))


def test_unknown_runtime_names_the_choices(package_factory) -> None:
    with pytest.raises(DanluError, match="'tensorrt'.*onnxruntime"):
        load_runtime(load_package(package_factory(runtime="tensorrt")))


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


def test_session_optimization_level_comes_from_the_package(package_factory) -> None:
    pkg = load_package(package_factory("basic", session={"graph_optimization_level": "basic"}))
    runtime = load_runtime(pkg)
    assert runtime.session.get_session_options().graph_optimization_level.name == \
        "ORT_ENABLE_BASIC"
    bad = load_package(package_factory("bad", session={"graph_optimization_level": "max"}))
    with pytest.raises(DanluError, match="graph_optimization_level.*'max'.*basic"):
        load_runtime(bad)
