"""The `danlu` command: parse, call a stage function, print. No logic of its own."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from danlu import __version__
from danlu.errors import DanluError, DataError, GateError, RecipeError

app = typer.Typer(
    name="danlu", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
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
) -> None:
    """Run a recipe end to end: data -> train -> evaluate (gate) -> ONNX export -> package."""
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

    try:
        result = run_pipeline(recipe, overrides, out=out_dir, resume=resume, on_stage=on_stage)
    except DanluError as e:
        raise _fail(e) from None
    _print_result(result)


def _print_result(result) -> None:
    table = Table(title="test metrics", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    test = result.metrics.get("test", {})
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted"):
        if key in test:
            table.add_row(key, f"{test[key]:.4f}")
    exp = result.metrics.get("export", {})
    if exp:
        table.add_row("parity max |diff|", f"{exp['parity_max_abs_diff']:.2e}")
        table.add_row("parity label agreement", f"{exp['parity_label_agreement']:.2%}")
    out.print(table)
    out.print(f"run folder: {result.run_dir}", highlight=False, soft_wrap=True)
    if result.package_dir:
        out.print(f"package:    {result.package_dir}", highlight=False, soft_wrap=True)
        out.print(f"serve it:   danlu serve {result.run_dir}", highlight=False, soft_wrap=True)


@app.command()
def serve(
    paths: Annotated[list[Path], typer.Argument(help="Run folders or model package folders.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server "
                                           "to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
) -> None:
    """Serve model packages over HTTP: KServe v2 (/v2/...) and /v1/models/NAME:predict."""
    from danlu.serve.app import serve as serve_packages
    from danlu.serve.config import ServeConfig

    try:
        serve_packages(paths, ServeConfig(host=host, port=port))
    except DanluError as e:
        raise _fail(e) from None


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
    table = Table(title="compression variants (test split; ORT latency, median)")
    for col in ("variant", "status", "accuracy", "params", "non-zero", "zip KB", "b1 ms", "b32 ms"):
        table.add_column(col, justify="left" if col in ("variant", "status") else "right")
    for r in report["variants"]:
        table.add_row(r["name"] + (" *" if r["name"] == report["chosen"] else ""), r["status"],
                      f"{r['accuracy']:.4f}", f"{r['params']:,}", f"{r['nonzero_params']:,}",
                      f"{r['deflated_bytes'] / 1e3:.1f}", f"{r['b1_ms']:.3f}", f"{r['b32_ms']:.3f}")
    out.print(table)
    for r in report["variants"]:
        for reason in r["reasons"]:
            err.print(f"[yellow]{r['name']} rejected:[/] {reason}", highlight=False, soft_wrap=True)
    promoted = " (promoted to package/, original in package.orig/)" if report["promoted"] else ""
    out.print(f"chosen: {report['chosen']}{promoted}", highlight=False)
    out.print(f"report: {run_dir / result.paths['pareto']}", highlight=False, soft_wrap=True)


def _fail(e: DanluError) -> typer.Exit:
    """Print a danlu error without a traceback; the exit code tells its kind."""
    kind = {RecipeError: "recipe error", DataError: "data error", GateError: "gate failed"}
    label = next((v for k, v in kind.items() if isinstance(e, k)), "error")
    err.print(f"[bold red]{label}:[/] {e}", highlight=False, soft_wrap=True)
    code = 3 if isinstance(e, GateError) else 2 if isinstance(e, (RecipeError, DataError)) else 1
    return typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
