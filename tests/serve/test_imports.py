"""`danlu serve` needs onnxruntime, never torch: a fresh interpreter proves it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import SRC

CHECK = """
import sys
import danlu.serve, danlu.serve.app, danlu.serve.__main__
from danlu.serve import create_app
app = create_app(sys.argv[1:])  # loads the packages and their ONNX Runtime sessions
assert "onnxruntime" in sys.modules
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not bad, bad
print("ok")
"""


def test_serving_imports_no_torch(digits_package: Path, table_package: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHECK, str(digits_package), str(table_package)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


TEXT_CHECK = """
import sys
from danlu.serve import ServeConfig, create_app
app = create_app([sys.argv[1]], ServeConfig(runtime=sys.argv[2] or None))
torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch" if torch else "no torch", "tokenizers" in sys.modules)
"""


def test_text_package_imports_torch_only_for_the_torch_runtime(text_package: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    seen = {}
    for runtime in ("onnxruntime", "torch"):
        proc = subprocess.run([sys.executable, "-c", TEXT_CHECK, str(text_package), runtime],
                              capture_output=True, text=True, timeout=180, env=env, check=False)
        assert proc.returncode == 0, proc.stderr
        seen[runtime] = proc.stdout.strip().splitlines()[-1]
    assert seen == {"onnxruntime": "no torch True", "torch": "torch True"}
