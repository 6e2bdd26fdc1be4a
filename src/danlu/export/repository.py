"""A package as a Triton model repository (and a KServe InferenceService pointing at it):
`danlu export RUN --format triton|kserve --out DIR` writes

    DIR/<name>/config.pbtxt          inputs, outputs, datatypes, dims, max_batch_size, batching
    DIR/<name>/<version>/model.onnx  the package's ONNX artifact (a table's: raw columns in)
    DIR/<name>/labels.txt            a classifier's labels, one per line (label_filename)
    DIR/<name>/tokenizer.json        a text model's tokenizer: the client tokenizes
    DIR/<name>.kserve.yaml           --format kserve: serving.kserve.io/v1beta1 InferenceService

Triton runs the ONNX graph alone, without danlu's torch-free encoder in front, so what the
encoder does must move: a table's column lookups (category vocabularies, binary pairs) and the
stacking of its number columns go into the graph (`raw_columns_graph`, ai.onnx.ml LabelEncoder),
so a client sends one raw input per column as it does to `danlu serve`; a text's tokenizer
cannot (no tokenizer op in plain ONNX Runtime): the client tokenizes with tokenizer.json and
sends input_ids and attention_mask. Every such fact is a note: printed, written as comments and
parameters into config.pbtxt.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from danlu.errors import DanluError

__all__ = ["Repository", "TRITON_TYPES", "raw_columns_graph", "write_repository"]

# Open Inference Protocol datatype -> Triton model_config.proto DataType.
TRITON_TYPES = {"BOOL": "TYPE_BOOL", "UINT8": "TYPE_UINT8", "UINT16": "TYPE_UINT16",
                "UINT32": "TYPE_UINT32", "UINT64": "TYPE_UINT64", "INT8": "TYPE_INT8",
                "INT16": "TYPE_INT16", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64",
                "FP16": "TYPE_FP16", "FP32": "TYPE_FP32", "FP64": "TYPE_FP64",
                "BF16": "TYPE_BF16", "BYTES": "TYPE_STRING"}
LABELS = "labels.txt"
# Names of the original graph inputs once raw columns feed them (a category column and its
# graph input share a name: the column is what the client sends).
INTERNAL = "danlu_encoded/"


@dataclass
class Repository:
    """What `write_repository` wrote: paths, the runtime whose ONNX it carries, Triton's inputs
    and outputs ({name, datatype, shape}, batch first) and the notes for the user."""

    dir: Path
    model_dir: Path
    config: Path
    model: Path
    runtime: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    kserve: Path | None = None


def write_repository(path: str | Path, out: str | Path,
                     fmt: Literal["triton", "kserve"] = "triton", *,
                     storage_uri: str | None = None, max_batch_size: int | None = None,
                     runtime: str | None = None) -> Repository:
    """Write the package at `path` (a package folder or a run folder) into the Triton model
    repository `out`; `fmt="kserve"` adds the InferenceService YAML. `max_batch_size` and the
    queue delay default to the serve settings `danlu serve` would use for `path`."""
    from danlu.runs import atomic_write
    from danlu.serve.config import resolve_serve_config
    from danlu.serve.package import load_package

    if fmt not in ("triton", "kserve"):
        raise DanluError(f"--format {fmt!r}: expected triton or kserve")
    pkg = load_package(path)
    serve = resolve_serve_config([Path(path)])
    batch = max_batch_size or serve.max_batch_size
    chosen, source, notes = _onnx_candidate(pkg, runtime)
    version = pkg.version if pkg.version.isdigit() and int(pkg.version) > 0 else "1"
    if version != pkg.version:
        notes.append(f"package version {pkg.version!r} is not a Triton version (a positive "
                     f"integer): written as version {version}")
    out = Path(out)
    model_dir = out / pkg.name
    model_file = model_dir / version / "model.onnx"
    inputs, in_graph, client_side = _plan(pkg)
    if in_graph:
        import onnx

        graph = raw_columns_graph(onnx.load(str(source)), in_graph)
        atomic_write(model_file, graph.SerializeToString())
        notes.append(f"raw columns in: {', '.join(i['name'] for i in inputs)} (one input per "
                     "column; the columns' encoding runs inside this model.onnx)")
    else:
        model_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = model_file.with_name(".model.onnx.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(model_file)
    for f in client_side:
        notes.append(_client_side_note(f, model_dir))
        for asset in f.assets():
            shutil.copyfile(asset, model_dir / Path(asset).name)
    labels = pkg.labels if pkg.labels and any(o.name == "probabilities" for o in pkg.outputs) \
        else None
    if labels:
        atomic_write(model_dir / LABELS, "".join(f"{lab}\n" for lab in labels))
    outputs = [_tensor(o) for o in pkg.outputs]
    notes.append(f"max_batch_size {batch}: Triton refuses a request of more rows (danlu serve "
                 "splits it); raise it with --max-batch-size")
    params = {"danlu_package": f"{pkg.name} {pkg.version}", "danlu_runtime": chosen,
              "danlu_package_runtime": pkg.runtime}
    text = config_pbtxt(pkg.name, batch, serve.max_queue_delay_ms, inputs, outputs,
                        LABELS if labels else None, params, notes)
    config = atomic_write(model_dir / "config.pbtxt", text)
    repo = Repository(out, model_dir, config, model_file, chosen, inputs, outputs, notes)
    if fmt == "kserve":
        repo.kserve = atomic_write(out / f"{pkg.name}.kserve.yaml",
                                   inference_service(pkg.name, out, storage_uri))
        if storage_uri is None:
            notes.append(f"storageUri in {repo.kserve.name} is a placeholder: copy {out} to a "
                         "PVC or bucket and pass --storage-uri (pvc://, s3://, gs://, https://)")
    return repo


def _onnx_candidate(pkg: Any, override: str | None) -> tuple[str, Path, list[str]]:
    """The runtime whose ONNX artifact the repository carries, its file and a note when that is
    not the package's default: the default when it is ONNX, else the first ONNX candidate that
    passed export's gates (else the first at all, said so)."""
    from danlu.serve.runtimes import ARTIFACTS

    entries = pkg.runtimes or {pkg.runtime: {}}

    def artifact(name: str) -> str:
        return str(entries[name].get("artifact", ARTIFACTS.get(name, "onnx")))

    onnx = [n for n in entries if pkg.artifacts.get(artifact(n), "").endswith(".onnx")]
    if not onnx:
        raise DanluError(f"{pkg.dir}: no ONNX artifact (runtimes: {', '.join(entries)}); "
                         "Triton's onnxruntime backend needs model.onnx: re-export the run")
    if override is not None and override not in onnx:
        raise DanluError(f"--runtime {override!r}: expected an ONNX runtime of this package "
                         f"({', '.join(onnx)})")
    passed = [n for n in onnx if entries[n].get("passed", True)]
    name = override or (pkg.runtime if pkg.runtime in onnx else (passed or onnx)[0])
    notes: list[str] = []
    entry = entries[name]
    if name != pkg.runtime:
        how = "as asked (--runtime)" if override else "the ONNX candidate"
        gates = "passed export's gates" if entry.get("passed", True) else \
            f"REFUSED by export's gates: {'; '.join(map(str, entry.get('reasons', [])))}"
        score = ", ".join(f"{k} {v:.4g}" for k, v in entry.items() if k.startswith("test_"))
        default = entries.get(pkg.runtime, {}).get("dtype", "")
        notes.append(f"the package's default runtime is {pkg.runtime}"
                     f"{f' ({default})' if default else ''}; this repository carries {how} "
                     f"{name} ({pkg.artifacts[artifact(name)]}, {entry.get('dtype', 'float32')}"
                     f"; {gates}{f'; {score}' if score else ''})")
    if entry.get("dtype") == "int8":  # measured on CPU, the only place export measures
        notes.append(f"{name} is dynamic int8, chosen by timing on this CPU; for a GPU Triton "
                     "measure the float32 model first (--runtime onnxruntime): dynamic int8 "
                     "quantization targets CPUs")
    return name, pkg.artifact(artifact(name)), notes


def _number_nodes(f: Any, target: str) -> tuple[list[Any], list[Any]]:
    """Number columns [N] each -> Unsqueeze -> Concat: the `features` matrix [N, k]."""
    from onnx import TensorProto, helper

    axes = helper.make_tensor(f"{INTERNAL}axis1", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Unsqueeze", [c, axes.name], [f"{INTERNAL}{c}/2d"])
             for c in f.columns]
    nodes.append(helper.make_node("Concat", [n.output[0] for n in nodes], [target], axis=1))
    return nodes, [axes]


def _lookup_keys(index: dict[str, Any], missing: Any) -> tuple[list[str], list[Any]]:
    """`index` plus the missing tokens the encoder knows (danlu.features.category._key), as a
    client may write them: lower, UPPER and Title case."""
    from danlu.data.readers.base import MISSING_TOKENS

    keys, values = list(index), list(index.values())
    for token in sorted(MISSING_TOKENS):
        for k in dict.fromkeys((token, token.upper(), token.title())):
            if k not in index and k not in keys:
                keys.append(k)
                values.append(missing)
    return keys, values


def _category_nodes(f: Any, target: str) -> tuple[list[Any], list[Any]]:
    """A category column (strings) -> its vocabulary index; unseen -> `__unknown__`."""
    from onnx import helper

    from danlu.features.category import MISSING, UNKNOWN

    keys, values = _lookup_keys(f.index, f.index[MISSING])
    return [helper.make_node("LabelEncoder", [f.columns[0]], [target], domain="ai.onnx.ml",
                             keys_strings=keys, values_int64s=values,
                             default_int64=f.index[UNKNOWN])], []


def _binary_nodes(f: Any, target: str) -> tuple[list[Any], list[Any]]:
    """A binary column (strings) -> 0.0 / 1.0 for its pair, NEITHER (0.5) for anything else."""
    from onnx import helper

    from danlu.features.binary import NEITHER

    keys, values = _lookup_keys(f.pair, NEITHER)
    return [helper.make_node("LabelEncoder", [f.columns[0]], [target], domain="ai.onnx.ml",
                             keys_strings=keys, values_floats=values,
                             default_float=NEITHER)], []


# Feature types whose client encoding the graph can do itself: type -> builder of the nodes
# from the raw columns to the feature's graph input (`raw_columns_graph`).
IN_GRAPH = {"number": _number_nodes, "category": _category_nodes, "binary": _binary_nodes}


def _plan(pkg: Any) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    """Triton's inputs (raw columns for the IN_GRAPH features, else the graph's own), the
    features encoded in the graph, and those the client must encode (a text's tokenizer)."""
    if not pkg.features:  # schema 1: the graph's inputs as they are
        return [_tensor(t) for t in pkg.model_inputs], [], []
    in_graph = [f for f in pkg.features if f.type in IN_GRAPH]
    rank = {c.name: i for i, c in enumerate(pkg.columns)}
    columns = sorted((s for f in in_graph for s in f.column_inputs()),
                     key=lambda s: rank.get(s["name"], len(rank)))
    rest = [f for f in pkg.features if f.type not in IN_GRAPH]
    inputs = [*map(dict, columns), *(dict(s) for f in rest for s in f.graph_inputs())]
    names = [i["name"] for i in inputs]
    if len(set(names)) != len(names):
        raise DanluError(f"{pkg.dir}: Triton inputs {names} repeat a name (a raw column named "
                         "like a graph input); rename the column in the recipe")
    return inputs, in_graph, [f for f in rest if f.client_input() not in f.graph_inputs()]


def _tensor(t: Any) -> dict[str, Any]:
    return {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}


def raw_columns_graph(model: Any, features: list[Any]) -> Any:
    """`model` (an onnx.ModelProto of a package) taking `features`' raw columns (a value per row,
    [N]) in place of their graph inputs: the IN_GRAPH nodes in front, the rest unchanged."""
    import onnx
    from onnx import helper

    g = model.graph
    targets = {s["name"]: f"{INTERNAL}{s['name']}" for f in features for s in f.graph_inputs()}
    _rename_uses(g, targets)
    nodes, inits = [], []
    for f in features:
        (spec,) = f.graph_inputs()
        made, init = IN_GRAPH[f.type](f, targets[spec["name"]])
        nodes += made
        inits += [i for i in init if i.name not in {x.name for x in inits}]
    kept = [i for i in g.input if i.name not in targets]
    onnx_type = {"FP32": onnx.TensorProto.FLOAT, "FP64": onnx.TensorProto.DOUBLE,
                 "INT64": onnx.TensorProto.INT64, "BYTES": onnx.TensorProto.STRING}
    columns = [helper.make_tensor_value_info(s["name"], onnx_type[s["datatype"]], ["batch"])
               for f in features for s in f.column_inputs()]
    del g.input[:]
    g.input.extend([*columns, *kept])
    old = list(g.node)
    del g.node[:]
    g.node.extend([*nodes, *old])
    g.initializer.extend(inits)
    if not any(o.domain == "ai.onnx.ml" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    onnx.checker.check_model(model)
    return model


def _rename_uses(graph: Any, names: dict[str, str]) -> None:
    """Point every use of a tensor in `names` (in nodes and subgraphs) at its new name."""
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in names:
                node.input[i] = names[name]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename_uses(sub, names)


def _client_side_note(f: Any, model_dir: Path) -> str:
    sends = ", ".join(f"{s['name']} ({s['datatype']} {s['shape']})" for s in f.graph_inputs())
    state = f.state_dict()
    if state.get("tokenizer"):
        return (f"{f.name} ({f.type}): tokenizer client-side, not in the graph: tokenize with "
                f"{model_dir.name}/{state['tokenizer']} (truncate to max_length "
                f"{state['max_length']}, pad with attention_mask 0) and send {sends}")
    return (f"{f.name} ({f.type}): encoded client-side, not in the graph ({state}); send "
            f"{sends}")


def _dims(shape: list[int]) -> tuple[list[int], bool]:
    """Triton dims (no batch dim) and whether the model's tensor is [batch] alone (then dims
    [1] and `reshape: { shape: [ ] }`)."""
    if not shape or shape[0] != -1:
        raise DanluError(f"tensor shape {shape}: expected a batch dimension first (-1)")
    return (list(shape[1:]), False) if len(shape) > 1 else ([1], True)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensors(kind: str, tensors: list[dict[str, Any]], label_file: str | None) -> str:
    blocks = []
    for t in tensors:
        dims, scalar = _dims(t["shape"])
        lines = [f"    name: {_q(t['name'])}", f"    data_type: {TRITON_TYPES[t['datatype']]}",
                 f"    dims: [ {', '.join(map(str, dims))} ]"]
        if scalar:
            lines.append("    reshape: { shape: [ ] }")
        if label_file and t["name"] == "probabilities":
            lines.append(f"    label_filename: {_q(label_file)}")
        blocks.append("  {\n" + "\n".join(lines) + "\n  }")
    return f"{kind} [\n" + ",\n".join(blocks) + "\n]\n"


def config_pbtxt(name: str, max_batch_size: int, delay_ms: float,
                 inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
                 label_file: str | None, params: dict[str, str], notes: list[str]) -> str:
    """Triton's model configuration (protobuf text format, model_config.proto)."""
    comments = "".join(f"# {n}\n" for n in notes)
    params = {**params, **{f"danlu_note_{i}": n for i, n in enumerate(notes, 1)}}
    parameters = "".join(f"parameters: {{ key: {_q(k)} value: {{ string_value: {_q(v)} }} }}\n"
                         for k, v in params.items())
    return (f"# Written by `danlu export` from the danlu package {name}.\n{comments}"
            f"name: {_q(name)}\nbackend: \"onnxruntime\"\nmax_batch_size: {max_batch_size}\n"
            + _tensors("input", inputs, None) + _tensors("output", outputs, label_file)
            + f"dynamic_batching {{\n  max_queue_delay_microseconds: {round(delay_ms * 1000)}\n}}\n"
            + parameters)


def inference_service(name: str, repository: Path, storage_uri: str | None) -> str:
    """A KServe InferenceService (serving.kserve.io/v1beta1) serving the repository with
    Triton: model format triton, Open Inference Protocol v2."""
    import yaml

    svc = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "model"
    svc = svc if svc[0].isalpha() else f"m-{svc}"
    doc = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": {"name": svc[:63].rstrip("-")},
           "spec": {"predictor": {"model": {
               "modelFormat": {"name": "triton"}, "protocolVersion": "v2",
               "storageUri": storage_uri or f"pvc://PVC-NAME/{repository.name}"}}}}
    head = (f"# Written by `danlu export --format kserve`: KServe serves the Triton model "
            f"repository {repository}\n# (model {name!r}) with Triton. storageUri: where you "
            "copied that folder. Then: kubectl apply -f THIS_FILE\n")
    return head + yaml.safe_dump(doc, sort_keys=False)
