"""A model folder on disk: `model.json` (family, config, fitted features, head) + the family's
weights (+ the features' files, e.g. tokenizer.json). The train stage writes train/model/, export
copies it as the package's torch artifact, and everything that needs a network loads it here —
evaluation, export, compression, the torch runtime — never from training code."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from danlu.errors import DanluError
from danlu.runs import read_json, write_json

__all__ = ["MODEL_JSON", "Loaded", "load_model", "load_packaged", "save_model"]

MODEL_JSON = "model.json"
FORMAT = 2


@dataclass
class Loaded:
    """A model folder read back: its family, config, fitted features, head and network."""

    family: Any
    cfg: Any
    features: list[Any]
    head: Any
    net: Any
    folder: Path

    def packaged(self):
        from danlu.models.packaged import Packaged

        return Packaged(self.features, self.net, self.head).eval()


def save_model(folder: Path, cfg: Any, net: Any, features: list[Any], head: Any) -> Path:
    """Write the folder whole or not at all: weights, the features' files, model.json, 0644."""
    from danlu.models import family

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    family(cfg).save(net, tmp, head)
    for f in features:
        for asset in f.assets():
            shutil.copyfile(asset, tmp / Path(asset).name)
    write_json(tmp / MODEL_JSON, {"format": FORMAT, "family": cfg.arch,
                                  "config": cfg.model_dump(mode="json"),
                                  "features": [f.describe() for f in features],
                                  "head": head.describe()})
    for p in tmp.rglob("*"):  # safetensors writes 0600; model files are meant to be shared
        if p.is_file():
            p.chmod(0o644)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    return folder


def read_spec(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MODEL_JSON
    if not path.is_file():
        raise DanluError(f"{folder}: not a model folder (no {MODEL_JSON}); a finished `danlu run` "
                         "writes one under train/model/")
    return read_json(path)


def load_model(folder: Path) -> Loaded:
    """The model saved in `folder`, its network in eval mode on the CPU."""
    from danlu.features import load_features, load_head
    from danlu.models import models

    folder = Path(folder)
    spec = read_spec(folder)
    fam = models[spec["family"]]
    cfg = fam.config.model_validate(spec["config"])
    features = load_features(spec["features"], folder)
    head = load_head(spec["head"])
    return Loaded(fam, cfg, features, head, fam.load(cfg, features, head, folder), folder)


def load_packaged(folder: Path):
    """The deployable module of the model in `folder` (client values in, outputs out)."""
    return load_model(folder).packaged()
