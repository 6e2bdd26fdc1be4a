"""Inference engines, by the name danlu-model.json gives in `runtime`; loaded lazily."""

from __future__ import annotations

import importlib
import logging

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package
from danlu.serve.runtimes.base import TRUNCATED, Runtime, RuntimeInputError

__all__ = ["RUNTIMES", "TRUNCATED", "Runtime", "RuntimeInputError", "load_runtime",
           "runtime_choices", "select_runtime"]

log = logging.getLogger("danlu.serve")

# name -> "module:Class", imported only when a package asks for it, so an engine's heavy
# dependency (torch for the PyTorch runtime) is never imported by the others.
RUNTIMES: dict[str, str] = {
    "onnxruntime": "danlu.serve.runtimes.onnx:OnnxRuntime",
    "onnxruntime-int8": "danlu.serve.runtimes.onnx:OnnxRuntime",
    "torch": "danlu.serve.runtimes.torch:TorchRuntime",
}
# The artifact each runtime reads when its `runtimes` entry names none.
ARTIFACTS: dict[str, str] = {"onnxruntime": "onnx", "onnxruntime-int8": "onnx_int8",
                             "torch": "torch"}


def runtime_choices(package: Package) -> list[str]:
    """The runtimes `package` can be served with: its `runtimes` entries, else its `runtime`."""
    return list(package.runtimes) or [package.runtime]


def select_runtime(package: Package, override: str | None = None) -> str:
    """The runtime to serve: `override` (`--runtime`) or the package's default, checked."""
    name = override or package.runtime
    choices = runtime_choices(package)
    if name not in choices:
        how = f"--runtime {name!r}" if override else f"danlu-model.json runtime {name!r}"
        raise DanluError(f"{package.dir}: {how} is not a runtime of this package; choose one "
                         f"of: {', '.join(choices)}")
    if name not in RUNTIMES:
        raise DanluError(f"{package.dir}: runtime {name!r} cannot be served here; this server "
                         f"runs: {', '.join(RUNTIMES)}")
    return name


def _import_runtime(package: Package, name: str, module: str):
    """The runtime's module; a missing engine (torch in a serving-only install) names the extra
    to install and the package's other runtimes."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        from danlu.extras import extra_for

        found = extra_for(e, "serve")
        if found is None:
            raise
        others = [r for r in runtime_choices(package) if r != name and r in RUNTIMES]
        also = f", or serve another of its runtimes: --runtime {others[0]}" if others else ""
        raise DanluError(f"{package.dir}: runtime {name!r} needs {found[0]}, which is not "
                         f"installed here: pip install 'danlu[{found[1]}]'{also}") from None


def load_runtime(package: Package, cfg: ServeConfig | None = None) -> Runtime:
    """Build the runtime to serve `package` with: the one `danlu serve` runs and export measures
    (packages with features get their encoder in front)."""
    cfg = cfg or ServeConfig()
    name = select_runtime(package, cfg.runtime)
    entry = package.runtimes.get(name, {})
    if entry.get("passed") is False:  # allowed on request, but never silently
        log.warning("%s: serving runtime %r although export's gates refused it: %s",
                    package.name, name, "; ".join(map(str, entry.get("reasons", []))) or "?")
    module, cls = RUNTIMES[name].split(":")
    runtime = getattr(_import_runtime(package, name, module), cls)(
        package, cfg, artifact=str(entry.get("artifact", ARTIFACTS[name])), entry=entry)
    runtime.name = name
    measured = entry.get("loaded") or {}
    got = runtime.describe()
    if measured and (measured.get("class"), measured.get("options")) != (got["class"], got["options"]):
        log.warning("%s: serving %s with other settings than export measured (%s, not %s): "
                    "its latency and parity figures may not hold", package.name, name,
                    got["options"], measured.get("options"))
    if package.features:  # clients send raw values: the features encode them first
        from danlu.serve.runtimes.encoding import EncodingRuntime

        runtime = EncodingRuntime(package, runtime)
    return runtime
