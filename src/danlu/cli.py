"""The `danlu` command: parse, call a stage function, print. No logic of its own."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from danlu import __version__
from danlu.errors import DanluError, DataError, GateError, RecipeError

# add_completion: `danlu --install-completion` and `--show-completion` (for the shell it runs in)
app = typer.Typer(
    name="danlu", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="One recipe from data to a served model: preprocess, train, evaluate, export, serve.")
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"danlu {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print danlu's version and exit.")] = False):
    """One recipe from data to a served model: preprocess, train, evaluate, export, serve."""


# Training across machines (torchrun's static rendezvous); options of the launch, not recipe
# keys: the recipe is one file for all machines, the node rank differs on each (docs/training.md).
_NNodes = Annotated[int | None, typer.Option(
    "--nnodes", help="Machines training together (the same on every machine); each runs this "
                     "command with the same recipe, overrides and processes (--nproc/train.nproc).")]
_NodeRank = Annotated[int | None, typer.Option(
    "--node-rank", help="This machine's index, 0 to NNODES-1. Node 0 is the one at --master and "
                        "the only one that writes weights and checkpoints.")]
_Master = Annotated[str | None, typer.Option(
    "--master", metavar="HOST:PORT", help="Node 0's address and a free TCP port that every "
                                          "machine reaches, e.g. 10.0.0.1:29500.")]


def _nodes(nnodes: int | None, node_rank: int | None, master: str | None):
    """--nnodes/--node-rank/--master as a Nodes value; a bad combination is a one-line error."""
    from danlu.train.nodes import Nodes

    try:
        return Nodes.parse(nnodes, node_rank, master)
    except RecipeError as e:
        raise _fail(e) from None


def _other_node(nodes, run_dir: Path) -> None:
    out.print(f"node {nodes.rank} of {nodes.count}: training finished; node 0 holds the weights "
              "and checkpoints (and evaluates, exports and reports)", highlight=False)
    out.print(f"run folder (data only): {run_dir}", highlight=False, soft_wrap=True)


@app.command()
def run(
    recipe: Annotated[Path | None, typer.Argument(
        help="Recipe YAML, e.g. recipes/digits.yaml (optional with --resume).")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Dotted overrides KEY=VALUE, typed by the recipe schema, e.g. train.epochs=5.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    resume: Annotated[Path | None, typer.Option(
        help="A run folder to continue: finished stages whose recipe sections are unchanged "
             "are skipped.")] = None,
    until: Annotated[str | None, typer.Option(
        help="Stop after this stage (data, tune, train, evaluate, export, compress, report).")] = None,
    nnodes: _NNodes = None,
    node_rank: _NodeRank = None,
    master: _Master = None,
) -> None:
    """Run a recipe end to end: data -> tune (if enabled) -> train -> evaluate (gate) -> export
    (ONNX, and torch for text models) -> compress (if set) -> report."""
    from danlu.pipeline import run as run_pipeline

    overrides = list(overrides or [])
    if recipe is not None and "=" in str(recipe) and not recipe.exists():
        if resume is None:
            raise _fail(RecipeError("recipe", got=str(recipe), expected="the recipe path first, "
                                    "then KEY=VALUE overrides"))
        recipe, overrides = None, [str(recipe), *overrides]  # `run --resume DIR key=value`
    if recipe is None and resume is None:
        raise _fail(RecipeError("recipe", got=None, expected="a recipe path, or --resume RUN_DIR"))
    started: dict[str, float] = {}

    def on_stage(stage: str, status: str) -> None:
        if status == "running":
            started[stage] = time.perf_counter()
            err.print(f"[bold]{stage}[/] ...", highlight=False)
        elif status == "cached":
            err.print(f"[bold]{stage}[/] cached (finished earlier, same recipe)", highlight=False)
        else:
            secs = time.perf_counter() - started.get(stage, time.perf_counter())
            err.print(f"[bold]{stage}[/] {status} in {secs:.1f} s", highlight=False)

    nodes = _nodes(nnodes, node_rank, master)
    try:
        result = run_pipeline(recipe, overrides, out=out_dir, resume=resume, on_stage=on_stage,
                              until=_stage_name(until), nodes=nodes)
    except DanluError as e:
        raise _fail(e) from None
    if nodes.rank != 0:
        _other_node(nodes, result.run_dir)
        return
    _print_result(result)


def _stage_name(name: str | None) -> str | None:
    """A --until value checked against the pipeline's stages."""
    from danlu.pipeline import STAGES

    names = [n for n, _, _ in STAGES]
    if name is not None and name not in names:
        raise _fail(RecipeError("--until", got=name, expected=f"a stage: one of {', '.join(names)}"))
    return name


@app.command()
def tune(
    recipe: Annotated[Path | None, typer.Argument(
        help="Recipe YAML with a `tune` section (optional with --resume).")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Dotted overrides KEY=VALUE, e.g. tune.sampler=gp train.epochs=3.")] = None,
    trials: Annotated[int | None, typer.Option(help="Finished trials the study should hold.")] = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage URL (sqlite:///..., postgresql://..., journal:PATH); "
             "default: RUN/tune/study.db.")] = None,
    study: Annotated[str | None, typer.Option(
        help="Study name; workers with the same --storage and --study share one study.")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    resume: Annotated[Path | None, typer.Option(
        help="A run folder whose study to continue (e.g. after a crash or kill).")] = None,
) -> None:
    """Search hyperparameters with Optuna, then train, evaluate and package the best configuration."""
    opts = {"tune.trials": trials, "tune.storage": storage, "tune.study": study,
            "tune.workers": workers}
    extra = [f"{k}={json.dumps(v)}" for k, v in opts.items() if v is not None]  # JSON: stays a str
    run(recipe, [*(overrides or []), "tune.enabled=true", *extra], out_dir, resume)


def _print_result(result) -> None:
    table = Table(title="test metrics", show_header=True)
    table.add_column("metric")
    test = result.metrics.get("test", {})
    table.add_column("value [95% CI]" if "ci" in test else "value", justify="right")
    _metric_rows(table, test)
    exp = result.metrics.get("export", {})
    if exp:
        table.add_row("parity max |diff|", f"{exp['parity_max_abs_diff']:.2e}")
        if exp.get("parity_label_agreement") is not None:  # None: a head without labels
            table.add_row("parity label agreement", f"{exp['parity_label_agreement']:.2%}")
    out.print(table)
    _print_warnings(test)
    line = result.metrics.get("evaluate", {}).get("baseline")
    if line:
        out.print(line, highlight=False, soft_wrap=True)
    out.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    if (result.run_dir / "report.html").is_file():
        out.print(f"report:     {result.run_dir / 'report.html'}", highlight=False, soft_wrap=True)
    if result.package_dir:
        out.print(f"package:    {result.package_dir}", highlight=False, soft_wrap=True)
        out.print(f"serve it:   danlu serve {result.run_dir}", highlight=False, soft_wrap=True)


def _metric_rows(table: Table, split: dict) -> None:
    """Headline metrics as `0.973 [0.958, 0.986]`, macro-F1 first when accuracy misleads."""
    from danlu.evaluate.summary import headline_rows

    for key, text in headline_rows(split):
        table.add_row(key, text)


def _print_warnings(split: dict) -> None:
    for w in split.get("warnings", []):
        out.print(f"[bold yellow]warning:[/] {w['message']}", highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    path: Annotated[Path, typer.Argument(help="A run folder, or a model package folder.")],
    data: Annotated[str | None, typer.Option(
        help="New labelled data, any data.source: csv:PATH, tsv:PATH, parquet:PATH, jsonl:PATH, "
             "folder:PATH, idx:PATH, corpus:NAME, sklearn:NAME, or a .csv/.tsv/.parquet/.jsonl "
             "file (default: "
             "the run's test split). Cleaned by the run's preprocess.clean rules: invalid rows "
             "are dropped and counted.")] = None,
    target: Annotated[str | None, typer.Option(
        help="Label column of --data (default: the run recipe's data.target; jsonl: label).")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the metrics JSON here (default for a run: "
                      "RUN/eval/external-<data name>.json).")] = None,
) -> None:
    """Score a trained run (PyTorch) or a model package (its runtime) on labelled data."""
    from danlu.evaluate.external import evaluate_external

    try:
        res = evaluate_external(path, data, target, out_file)
    except DanluError as e:
        raise _fail(e) from None
    table = Table(title=f"{res.source}: {res.metrics['n']} rows, {res.model}", show_header=True)
    table.add_column("metric")
    table.add_column("value [95% CI]" if "ci" in res.metrics else "value", justify="right")
    _metric_rows(table, res.metrics)
    out.print(table)
    if res.cleaning is not None:
        c = res.cleaning
        removed = ", ".join(f"{k} {v}" for k, v in c["removed"].items())
        out.print(f"rows: {c['rows_in']} read, {c['rows_out']} scored"
                  + (f"; removed {c['removed_total']}: {removed}" if removed else ""),
                  highlight=False, soft_wrap=True)
    _print_warnings(res.metrics)
    if res.written:
        out.print(f"written: {res.written}", highlight=False, soft_wrap=True)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder made by `danlu run`.")],
) -> None:
    """Write RUN/report.html: one self-contained page (inline SVG plots, no network)."""
    from danlu.report import write_report

    try:
        path = write_report(run_dir)
    except DanluError as e:
        raise _fail(e) from None
    out.print(f"report: {path}", highlight=False, soft_wrap=True)


@app.command()
def train(
    target: Annotated[Path, typer.Argument(
        help="Recipe YAML (a new run), or with --resume the run folder to continue.")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Dotted overrides KEY=VALUE, e.g. train.epochs=5.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    resume: Annotated[bool, typer.Option(
        "--resume", help="TARGET is a run folder: continue its training from the last "
                         "checkpoint (bitwise the same result as an uninterrupted run).")] = False,
    nproc: Annotated[int | None, typer.Option(
        help="Processes on this machine: DDP under torchrun (sets train.nproc).")] = None,
    nnodes: _NNodes = None,
    node_rank: _NodeRank = None,
    master: _Master = None,
) -> None:
    """Train only (data -> train): weights and checkpoints in RUN/train/, no evaluation or export.

    Across N machines: the same command on each, plus --nnodes N --node-rank R --master HOST:PORT."""
    from danlu.pipeline import run as run_pipeline

    def on_stage(stage: str, status: str) -> None:
        err.print(f"[bold]{stage}[/] {status}", highlight=False)

    overrides = [*(overrides or []), *([f"train.nproc={nproc}"] if nproc else [])]
    nodes = _nodes(nnodes, node_rank, master)
    try:
        result = run_pipeline(None if resume else target, overrides, out=out_dir,
                              resume=target if resume else None, on_stage=on_stage, until="train",
                              nodes=nodes)
    except DanluError as e:
        raise _fail(e) from None
    if nodes.rank != 0:
        _other_node(nodes, result.run_dir)
        return
    m = result.metrics.get("train", {})
    if m.get("resumed_from"):
        out.print(f"resumed from checkpoint {m['resumed_from']}", highlight=False)
    if m:
        out.print(f"best {m['metric']} {m['best_value']:.4f} at epoch {m['best_epoch']} "
                  f"({m['epochs_run']} epochs run)", highlight=False)
    out.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)


@app.command("compare-optimizers")
def compare_optimizers(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML whose model and data to train.")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Dotted overrides KEY=VALUE, e.g. train.epochs=10.")] = None,
    names: Annotated[str, typer.Option("--optimizers", help="Comma-separated optimizer names.")]
        = "sgd,momentum,adagrad,adam",
    lr: Annotated[str, typer.Option(help="Learning rates NAME=LR,... (defaults: the recipe's lr "
                                         "for its optimizer, a tuned one for the others).")] = "",
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Train the same model from the same initial weights and data order with each optimizer;
    write loss/metric curves (SVG, PNG) and a table (JSON, markdown)."""
    from danlu.train.compare import compare_optimizers as compare

    try:
        lrs = {k.strip(): float(v) for k, _, v in (p.partition("=") for p in lr.split(",") if p)}
    except ValueError:
        raise _fail(RecipeError("--lr", got=lr, expected="NAME=LR pairs, e.g. sgd=0.1,adam=0.002")) \
            from None
    try:
        result = compare(recipe, [n.strip() for n in names.split(",") if n.strip()], overrides,
                         out=out_dir, lrs=lrs)
    except DanluError as e:
        raise _fail(e) from None
    key = result.metric
    table = Table(title=f"optimizers, {result.dir.parent.name}", show_header=True)
    for col in ("optimizer", "lr", f"best {key}", "best epoch", "epochs to 95%", "wall s"):
        table.add_column(col, justify="left" if col == "optimizer" else "right")
    for r in result.rows:
        table.add_row(r["optimizer"], f"{r['lr']:g}", f"{r[f'best_{key}']:.4f}", str(r["best_epoch"]),
                      str(r["epochs_to_95pct"]), f"{r['wall_seconds']:.1f}")
    out.print(table)
    out.print(f"curves and table: {result.dir}", highlight=False, soft_wrap=True)


@app.command("export")
def export_repository(
    path: Annotated[Path, typer.Argument(help="A run folder, or a model package folder.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The model repository folder to write "
                                          "(other models in it are left alone).")],
    fmt: Annotated[str, typer.Option(
        "--format", help="triton: DIR/NAME/config.pbtxt + DIR/NAME/VERSION/model.onnx (+ "
                         "labels.txt, tokenizer.json); kserve: that, plus DIR/NAME.kserve.yaml "
                         "(an InferenceService serving it with Triton).")] = "triton",
    storage_uri: Annotated[str | None, typer.Option(
        help="--format kserve: where the repository will be (pvc://..., s3://..., gs://...); "
             "default: a pvc:// placeholder to edit.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(
        min=1, help="Triton's max_batch_size (default: the run's serve.max_batch_size).")] = None,
    runtime: Annotated[str | None, typer.Option(
        help="The package runtime whose ONNX to carry (onnxruntime, onnxruntime-int8); default: "
             "the package's default, or its ONNX candidate when that is torch.")] = None,
) -> None:
    """Write a package as a Triton model repository (or KServe InferenceService + repository)."""
    from danlu.export.repository import write_repository

    if fmt not in ("triton", "kserve"):
        raise _fail(RecipeError("--format", got=fmt, expected="triton or kserve"))
    try:
        repo = write_repository(path, out_dir, fmt, storage_uri=storage_uri,  # type: ignore[arg-type]
                                max_batch_size=max_batch_size, runtime=runtime)
    except DanluError as e:
        raise _fail(e) from None
    for note in repo.notes:
        err.print(f"[bold yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    out.print(f"model:      {repo.model}  ({repo.runtime})", highlight=False, soft_wrap=True)
    out.print(f"config:     {repo.config}", highlight=False, soft_wrap=True)
    if repo.kserve:
        out.print(f"kserve:     {repo.kserve}  (kubectl apply -f)", highlight=False, soft_wrap=True)
    out.print(f"run it:     docker run --rm -p 8000:8000 -v {repo.dir.resolve()}:/models "
              "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models",
              highlight=False, soft_wrap=True)


# `danlu serve` flags whose name differs from their ServeConfig field; the others match.
_SERVE_FLAG_FIELDS = {"threads": "intra_op_threads", "request_timeout": "request_timeout_s",
                      "graceful_timeout": "graceful_timeout_s"}


class _ServeCommand(TyperCommand):
    """Shows ServeConfig's defaults in `danlu serve --help`, imported only when help is asked
    for: the flags default to None (not given), and start-up stays free of pydantic."""

    def format_help(self, ctx, formatter) -> None:
        from danlu.serve.config import ServeConfig

        defaults = ServeConfig()
        for param in self.params:
            field = _SERVE_FLAG_FIELDS.get(param.name, param.name)
            value = getattr(defaults, field, None) if field in ServeConfig.model_fields else None
            if isinstance(value, bool):
                param.show_default = "on" if value else "off"
            elif value is not None:
                param.show_default = str(value)
        super().format_help(ctx, formatter)


@app.command(cls=_ServeCommand)
def serve(
    targets: Annotated[list[str], typer.Argument(
        metavar="PATH|serve.KEY=VALUE",
        help="Run folders or model package folders, then dotted overrides of the recipe's serve "
             "section, e.g. serve.max_batch_size=16.")],
    host: Annotated[str | None, typer.Option(help="Address to bind; 0.0.0.0 exposes the server "
                                                  "to the network.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    batching: Annotated[bool | None, typer.Option(
        "--batching/--no-batching", help="Dynamic batching of concurrent requests.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Rows per ONNX Runtime call.")] = None,
    max_queue_delay_ms: Annotated[float | None, typer.Option(
        help="How long a batch waits for more requests (0 = never waits).")] = None,
    max_queue_size: Annotated[int | None, typer.Option(
        help="Queued requests per model before 429.")] = None,
    inference_workers: Annotated[int | None, typer.Option(
        help="Batches running at once (inference threads).")] = None,
    threads: Annotated[int | None, typer.Option(
        help="Threads per inference call, ONNX Runtime or torch (0 = cores / (workers x "
             "inference workers)).")] = None,
    request_timeout: Annotated[float | None, typer.Option(help="Seconds before 504.")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(
        help="Largest request body (413 above).")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="DANLU_TOKEN", help="Bearer token for the model endpoints (or DANLU_TOKEN).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Server processes on one port; they split the cores.")] = None,
    graceful_timeout: Annotated[float | None, typer.Option(
        help="Seconds queued and running requests get to finish on SIGTERM.")] = None,
    runtime: Annotated[str | None, typer.Option(
        help="Serve with this entry of the package's runtimes (e.g. torch, onnxruntime) "
             "instead of its default.")] = None,
) -> None:
    """Serve model packages over HTTP: KServe v2 (/v2/...) and /v1/models/NAME:predict.

    Settings, each over the one before: the defaults shown here; the serve section of the
    first run folder's recipe.yaml (a package folder has none; other run folders' sections
    are not used); serve.KEY=VALUE overrides; the flags given.
    """
    from danlu.serve.app import serve as serve_packages
    from danlu.serve.config import resolve_serve_config, split_overrides

    given = {"host": host, "port": port, "batching": batching, "max_batch_size": max_batch_size,
             "max_queue_delay_ms": max_queue_delay_ms, "max_queue_size": max_queue_size,
             "inference_workers": inference_workers, "threads": threads,
             "request_timeout": request_timeout, "max_body_bytes": max_body_bytes,
             "token": token, "workers": workers, "graceful_timeout": graceful_timeout,
             "runtime": runtime}
    flags = {_SERVE_FLAG_FIELDS.get(k, k): v for k, v in given.items()}
    try:
        paths, overrides = split_overrides(targets)
        serve_packages(paths, resolve_serve_config(paths, overrides, flags))
    except DanluError as e:
        raise _fail(e) from None


data_app = typer.Typer(no_args_is_help=True, help="Data alone: prepare (clean + split + fit the features) "
                       "or preview augmentations.")
app.add_typer(data_app, name="data")


@data_app.command("prepare")
def data_prepare(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides KEY=VALUE.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Clean, split and fit the features only; `danlu run --resume RUN` then reuses it."""
    from danlu.pipeline import run as run_pipeline
    from danlu.runs import read_json

    try:
        result = run_pipeline(recipe, list(overrides or []), out=out_dir, until="data")
    except DanluError as e:
        raise _fail(e) from None
    c = read_json(result.run_dir / "data" / "cleaning.json")
    table = Table(title="data prepared", show_header=True)
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("read", f"{c['rows_in']:,}")
    for reason, n in c["removed"].items():
        table.add_row(f"removed: {reason}", f"{n:,}")
    for reason, n in c["flagged"].items():
        table.add_row(f"flagged: {reason}", f"{n:,}")
    m = result.metrics["data"]
    for s in ("train", "val", "test"):
        table.add_row(s, f"{m[f'{s}_rows']:,}")
    out.print(table)
    out.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    out.print(f"clean data: {result.run_dir / 'data' / 'clean.parquet'}", highlight=False, soft_wrap=True)
    out.print(f"continue:   danlu run --resume {result.run_dir}", highlight=False, soft_wrap=True)


@data_app.command("preview")
def data_preview(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML with preprocess.augment.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides KEY=VALUE.")] = None,
    png: Annotated[Path, typer.Option("--out", help="PNG file to write.")] = Path("augment-preview.png"),
    samples: Annotated[int, typer.Option(help="Training images (rows of the grid).")] = 8,
    variants: Annotated[int, typer.Option(help="Augmented versions of each (columns).")] = 7,
) -> None:
    """Write a PNG grid of augmented training samples: what the model will see."""
    from danlu.data.preview import preview
    from danlu.recipe import load_recipe

    try:
        path = preview(load_recipe(recipe, list(overrides or [])), png, samples, variants)
    except DanluError as e:
        raise _fail(e) from None
    out.print(f"preview: {path}", highlight=False, soft_wrap=True)


@app.command()
def init(
    source: Annotated[str, typer.Argument(
        help="csv:PATH (delimiter , ; tab | found; .csv.gz/.csv.zst read as is), tsv:PATH or "
             "parquet:PATH")],
    target: Annotated[str, typer.Option(
        help="The column to predict: classes (category head) or a number (regression, number "
             "head).")],
    recipe_out: Annotated[Path, typer.Option("--out", help="Recipe file to write.")] = Path("recipe.yaml"),
    tune: Annotated[int, typer.Option(
        "--tune", min=0, help="Add a `tune:` section of N trials (TPE) around the starter "
        "configuration: learning rate, width, dropout, weight decay, batch size. `danlu run` "
        "searches, then trains the best. 0: none.")] = 0,
) -> None:
    """Inspect a table (one streaming pass) and write a commented starter recipe."""
    from danlu.data.inspect import init_recipe
    from danlu.recipe import load_recipe
    from danlu.runs import atomic_write

    try:
        text = init_recipe(source, target, tune)
        import yaml

        load_recipe(yaml.safe_load(text))  # what we write must load as it is
    except DanluError as e:
        raise _fail(e) from None
    atomic_write(recipe_out, text)
    for line in text.splitlines():
        if line.startswith("# WARNING"):
            err.print(f"[bold yellow]{line[2:]}[/]", highlight=False, soft_wrap=True)
    out.print(f"recipe: {recipe_out}  (next: danlu run {recipe_out})", highlight=False, soft_wrap=True)
@app.command()
def compress(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder, e.g. runs/digits-...")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Dotted overrides KEY=VALUE, e.g. compress.promote=true.")] = None,
    search: Annotated[bool, typer.Option("--search", help="Search compression recipes with "
                                         "Optuna (multi-objective) instead of the listed variants.")] = False,
    trials: Annotated[int | None, typer.Option(help="Trials for --search.")] = None,
) -> None:
    """Prune, quantize and distill the run's model; measure and gate each; write compress/pareto.json."""
    from danlu.compress.stage import compress_run
    from danlu.runs import read_json

    try:
        result = compress_run(run_dir, list(overrides or []), search=search, trials=trials)
    except DanluError as e:
        raise _fail(e) from None
    report = read_json(run_dir / result.paths["pareto"])
    table = Table(title="compression variants (test split; latency as served, median)")
    metric = report.get("metric") or "accuracy"
    for col in ("variant", "status", "runtime", f"{metric}", "params", "non-zero", "zip KB",
                "b1 ms", "b32 ms"):
        table.add_column(col, justify="left" if col in ("variant", "status", "runtime") else "right")
    for r in report["variants"]:
        table.add_row(r["name"] + (" *" if r["name"] == report["chosen"] else ""), r["status"],
                      f"{r['runtime']} ({r['dtype']})", f"{r[metric]:.4f}", f"{r['params']:,}",
                      f"{r['nonzero_params']:,}", f"{r['deflated_bytes'] / 1e3:.1f}",
                      f"{r['b1_ms']:.3f}", f"{r['b32_ms']:.3f}")
    out.print(table)
    for r in report["variants"]:
        for reason in r["reasons"]:
            err.print(f"[yellow]{r['name']} rejected:[/] {reason}", highlight=False, soft_wrap=True)
    for r in report["variants"]:
        if (g := r.get("distillation_gain")) and "mcnemar_p" in g:  # labels: in points
            out.print(f"{r['name']}: distillation gain {g['accuracy_gain'] * 100:+.2f} pt "
                      f"[{g['ci'][0] * 100:+.2f}, {g['ci'][1] * 100:+.2f}] vs the same student "
                      f"alone (McNemar p {g['mcnemar_p']:.3f})", highlight=False)
        elif g:
            m = g["metric"]
            out.print(f"{r['name']}: distillation gain in {m} {g[f'{m}_gain']:+.4g} "
                      f"[{g['ci'][0]:+.4g}, {g['ci'][1]:+.4g}] vs the same student alone "
                      "(positive: better)", highlight=False)
    promoted = " (promoted to package/, original in package.orig/)" if report["promoted"] else ""
    out.print(f"chosen: {report['chosen']}{promoted}", highlight=False)
    out.print(f"report: {run_dir / result.paths['pareto']}", highlight=False, soft_wrap=True)


def _fail(e: DanluError) -> typer.Exit:
    """Print a danlu error without a traceback; the exit code tells its kind."""
    from rich.markup import escape

    kind = {RecipeError: "recipe error", DataError: "data error", GateError: "gate failed"}
    label = next((v for k, v in kind.items() if isinstance(e, k)), "error")
    err.print(f"[bold red]{label}:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    code = 3 if isinstance(e, GateError) else 2 if isinstance(e, (RecipeError, DataError)) else 1
    return typer.Exit(code)


def _unexpected(e: Exception) -> int:
    """One line for an error danlu did not expect, its traceback in a file; the exit code (1).

    The file is the run folder's log.txt when a stage failed (the pipeline appended it there,
    `danlu.runs.log_error`), else a new temporary file."""
    import os
    import tempfile
    import traceback

    from rich.markup import escape

    log = getattr(e, "run_log", None)
    if log is None:
        fd, log = tempfile.mkstemp(prefix="danlu-error-", suffix=".log", text=True)
        with os.fdopen(fd, "w") as f:
            f.write("".join(traceback.format_exception(e)))
    first = next((line for line in str(e).splitlines() if line.strip()), "")[:300]
    err.print(f"[bold red]error:[/] {type(e).__name__}: {escape(first)} (traceback in {log})",
              highlight=False, soft_wrap=True)
    return 1


def guarded(command, name: str | None = None) -> int:
    """Run `command()` (a click entry point) so that what escapes it prints one line, not a
    traceback: a DanluError as the commands print it, a missing optional module as the extra to
    install (`danlu.extras`), anything else by `_unexpected`. `name`: the command, for that
    line (default: read from sys.argv). DANLU_TRACEBACK=1 lets the exception through, for
    whoever debugs danlu itself."""
    import os

    try:
        return command() or 0
    except DanluError as e:
        if os.environ.get("DANLU_TRACEBACK"):
            raise
        return _fail(e).exit_code
    except Exception as e:  # noqa: BLE001  (the point: no user sees a traceback)
        if os.environ.get("DANLU_TRACEBACK"):
            raise
        from danlu.extras import missing_extra

        line = missing_extra(e, name or _command_name(sys.argv[1:]))
        if line is None:
            return _unexpected(e)
        from rich.markup import escape

        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        return 1


def _command_name(argv: list[str]) -> str | None:
    """The command in a command line: `tune` in `danlu tune r.yaml`, `data prepare` for a group."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return None
    return " ".join(words[:2]) if words[0] == "data" and len(words) > 1 else words[0]


def main(prog_name: str | None = None) -> None:
    """The `danlu` console script (and `python -m danlu`, which names itself in help texts)."""
    # The thread policy first: OpenMP and BLAS read it once, when torch/numpy load (danlu.threads).
    from danlu.threads import configure

    configure()
    sys.exit(guarded(lambda: app(prog_name=prog_name)))


if __name__ == "__main__":
    main()
