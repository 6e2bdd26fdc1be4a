"""`danlu export --format triton|kserve`: Triton model repositories of the packages danlu writes
(digits: an image; iris: a table with a category column; the tiny text run), checked the way
Triton reads them: config.pbtxt parsed by Triton's own model_config protobuf (tritonclient ships
it), every field against danlu-model.json; model.onnx run by ONNX Runtime on what a Triton client
sends, against the run's evaluation (the oracle) or danlu's own serving path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from danlu.export.repository import write_repository
from danlu.package import read_meta
from danlu.serve.config import ServeConfig
from danlu.serve.package import TensorSpec, load_package
from danlu.serve.runtimes import load_runtime

from .conftest import Evaluation

mc = pytest.importorskip("tritonclient.grpc.model_config_pb2")
text_format = pytest.importorskip("google.protobuf.text_format")

ATOL = 1e-4  # float32 ONNX Runtime vs the float32 torch model evaluation ran
DANLU = str(Path(sys.executable).with_name("danlu"))
ORT_TYPES = {"FP32": "tensor(float)", "INT64": "tensor(int64)", "BYTES": "tensor(string)"}


def parse_config(model_dir: Path):
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


def check_tensors(got, declared, model_io) -> None:
    """Triton's inputs or outputs `got` against danlu-model.json's tensors `declared` and the ONNX
    graph's own (`model_io`, what Triton checks the configuration against at load)."""
    assert [t.name for t in got] == [t.name for t in declared]
    graph = {t.name: t for t in model_io}
    for t, d in zip(got, declared, strict=True):
        name = "STRING" if d.datatype == "BYTES" else d.datatype
        assert mc.DataType.Name(t.data_type) == f"TYPE_{name}"
        if len(d.shape) == 1:  # [batch] alone: Triton's dims [1], reshaped to the graph's []
            assert list(t.dims) == [1] and t.HasField("reshape") and list(t.reshape.shape) == []
        else:
            assert list(t.dims) == list(d.shape[1:]) and not t.HasField("reshape")
        assert graph[t.name].type == ORT_TYPES[d.datatype]
        assert len(graph[t.name].shape) == len(d.shape)


def check_repository(repo_dir: Path, pkg_dir: Path, inputs: list) -> tuple[object, ort.InferenceSession]:
    """config.pbtxt and labels.txt field by field against the package; the ONNX session."""
    meta = read_meta(pkg_dir)
    model_dir = repo_dir / meta.name
    cfg = parse_config(model_dir)
    session = ort.InferenceSession(str(model_dir / meta.version / "model.onnx"))
    assert cfg.name == meta.name and cfg.backend == "onnxruntime"
    assert cfg.max_batch_size == ServeConfig().max_batch_size  # these runs set no serve section
    assert cfg.HasField("dynamic_batching")
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 0
    check_tensors(cfg.input, inputs, session.get_inputs())
    check_tensors(cfg.output, meta.outputs, session.get_outputs())
    if meta.labels:
        (probs,) = [o for o in cfg.output if o.name == "probabilities"]
        assert (model_dir / probs.label_filename).read_text().splitlines() == meta.labels
    assert all(o.label_filename == "" for o in cfg.output if o.name != "probabilities")
    return cfg, session


def test_an_image_package_as_a_kserve_repository(digits_run, digits_eval: Evaluation,
                                                  tmp_path: Path) -> None:
    """The CLI on a run folder: the repository, the InferenceService pointing at it, and
    model.onnx answering the test images as the evaluation did."""
    r = subprocess.run([DANLU, "export", str(digits_run.run_dir), "--format", "kserve",
                        "--out", str(tmp_path / "repo"), "--storage-uri", "pvc://models/repo"],
                       check=False, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "tritonserver --model-repository" in r.stdout
    meta = read_meta(digits_run.package_dir)
    _, session = check_repository(tmp_path / "repo", digits_run.package_dir, meta.inputs)
    probs, labels = session.run(["probabilities", "label"], {"pixels": digits_eval.values["pixels"]})
    np.testing.assert_allclose(probs, digits_eval.probs, atol=ATOL)
    np.testing.assert_array_equal(labels, digits_eval.labels)
    svc = yaml.safe_load((tmp_path / "repo" / "digits.kserve.yaml").read_text())
    assert (svc["apiVersion"], svc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert svc["metadata"]["name"] == "digits"
    model = svc["spec"]["predictor"]["model"]
    assert model == {"modelFormat": {"name": "triton"}, "protocolVersion": "v2",
                     "storageUri": "pvc://models/repo"}


def test_a_table_repository_takes_one_raw_input_per_column(table_run, table_eval: Evaluation,
                                                           tmp_path: Path) -> None:
    """The category lookup and the number stacking run inside model.onnx: raw columns in, the
    evaluation's probabilities out; missing, unseen and differently written values as the server
    encodes them."""
    repo = write_repository(table_run.run_dir, tmp_path, "triton")
    pkg = load_package(table_run.package_dir)
    check_repository(tmp_path, pkg.dir, pkg.columns)
    assert "garden" in {i["name"] for i in repo.inputs} and "features" not in \
        {i["name"] for i in repo.inputs}
    session = ort.InferenceSession(str(repo.model))
    (numbers,) = [f for f in pkg.features if f.type == "number"]
    feed = {c: table_eval.values["features"][:, i] for i, c in enumerate(numbers.columns)}
    feed["garden"] = table_eval.values["garden"].astype(object)
    probs, labels = session.run(["probabilities", "label"], feed)
    np.testing.assert_allclose(probs, table_eval.probs, atol=ATOL)
    np.testing.assert_array_equal(labels, table_eval.labels)
    odd = np.array(["kew", "", "NA", "n/a", "Null", "nowhere", "__unknown__", "wisley"], object)
    rows = {c: np.resize(v[:3], len(odd)).astype(np.float32) for c, v in feed.items()
            if c != "garden"}
    rows[numbers.columns[0]][1] = np.nan  # a missing number: imputed in the graph
    served = load_runtime(pkg).run(pkg.assemble({**rows, "garden": odd}))
    got = session.run(["probabilities"], {**rows, "garden": odd})[0]
    np.testing.assert_allclose(got, served["probabilities"], atol=1e-6)


def test_a_text_repository_takes_client_side_tokens(text_run, tmp_path: Path) -> None:
    """The tokenizer stays with the client (tokenizer.json in the model folder): tokens in,
    the package's own answers out; a package served by default in torch carries its ONNX
    candidate and says so."""
    from tokenizers import Tokenizer

    from tests.textdata import bbc_texts

    pkg = load_package(text_run.package_dir)
    repo = write_repository(text_run.package_dir, tmp_path / "a", "triton")
    (text,) = pkg.features
    _, session = check_repository(tmp_path / "a", pkg.dir, [
        TensorSpec(s["name"], s["datatype"], tuple(s["shape"])) for s in text.graph_inputs()])
    assert any("tokenizer client-side" in n for n in repo.notes)
    texts = bbc_texts(60, 3)[0]
    tok = Tokenizer.from_file(str(repo.model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(read_meta(pkg.dir).features[0].state["max_length"])
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = np.array([e.ids + [0] * (width - len(e.ids)) for e in encs], np.int64)
    mask = np.array([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in encs], np.int64)
    got = session.run(["probabilities"], {"input_ids": ids, "attention_mask": mask})[0]
    served = load_runtime(pkg, ServeConfig(runtime=repo.runtime)).run(
        {"text": np.array(texts, object)})
    np.testing.assert_allclose(got, served["probabilities"], atol=1e-5)

    torch_default = tmp_path / "pkg"  # the same package, served by default in torch
    torch_default.mkdir()
    for f in pkg.dir.iterdir():
        if f.name != "danlu-model.json":
            (torch_default / f.name).symlink_to(f)
    meta = read_meta(pkg.dir).dump()
    (torch_default / "danlu-model.json").write_text(json.dumps({**meta, "runtime": "torch"}))
    repo = write_repository(torch_default, tmp_path / "b", "triton")
    assert repo.runtime != "torch" and repo.runtime in meta["runtimes"]
    (note,) = [n for n in repo.notes if "default runtime is torch" in n]
    assert f"carries the ONNX candidate {repo.runtime}" in note
    cfg = parse_config(repo.model_dir)
    assert cfg.parameters["danlu_package_runtime"].string_value == "torch"
    assert cfg.parameters["danlu_runtime"].string_value == repo.runtime
    assert "default runtime is torch" in (repo.model_dir / "config.pbtxt").read_text().split(
        "\nname:")[0]  # a comment before the fields
    artifact = pkg.artifact(meta["runtimes"][repo.runtime]["artifact"])
    assert repo.model.read_bytes() == artifact.read_bytes()


def test_the_graphs_lookups_match_the_servers_encoder() -> None:
    """Binary and category columns looked up by LabelEncoder nodes in front of a graph (here an
    Identity per input) give what the encoder gives, for seen, missing and unseen values."""
    import onnx
    from onnx import TensorProto, helper

    from danlu.export.repository import raw_columns_graph
    from danlu.features.binary import BinaryFeature
    from danlu.features.category import CategoryFeature

    smoker = BinaryFeature("smoker", ["smoker"]).load_state_dict({"values": ["no", "yes"]})
    region = CategoryFeature("region", ["region"]).load_state_dict(
        {"vocabulary": ["north", "south", "__missing__", "__unknown__"]})
    graph = helper.make_graph(
        [helper.make_node("Identity", ["smoker"], ["s"]),
         helper.make_node("Identity", ["region"], ["r"])], "g",
        [helper.make_tensor_value_info("smoker", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("region", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch"]),
         helper.make_tensor_value_info("r", TensorProto.INT64, ["batch"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model = raw_columns_graph(model, [smoker, region])
    session = ort.InferenceSession(model.SerializeToString())
    assert [i.name for i in session.get_inputs()] == ["smoker", "region"]
    values = np.array(["yes", "no", "", "NA", "N/A", "maybe", "south", "north"], object)
    s, r = session.run(["s", "r"], {"smoker": values, "region": values})
    np.testing.assert_array_equal(s, smoker.encode(values)["smoker"])
    np.testing.assert_array_equal(r, region.encode(values)["region"])
    assert onnx.checker.check_model(model) is None
