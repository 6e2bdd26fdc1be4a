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
app = create_app([sys.argv[1]])  # loads the package and its ONNX Runtime session
assert "onnxruntime" in sys.modules
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not bad, bad
print("ok")
"""


def test_serving_imports_no_torch(packages: dict[str, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHECK, str(packages["toy"])],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
