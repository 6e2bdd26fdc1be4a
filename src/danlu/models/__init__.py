"""Model registry: one builder per file; `build_model` picks one by the recipe's `model.arch`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from danlu.registry import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = ["InputSpec", "build_model", "model_spec", "models"]


@dataclass(frozen=True)
class InputSpec:
    """What a model sees: flat rows of `features` numbers, optionally an image (C, H, W)."""

    features: int
    image_shape: tuple[int, int, int] | None = None


models: Registry[Callable[..., nn.Module]] = Registry("model", "model.arch")


def _load_builders() -> None:
    # Importing the modules runs their @models.register decorators (torch is imported here).
    from danlu.models import cnn, mlp, text  # noqa: F401


def build_model(cfg: Any, spec: InputSpec, num_classes: int) -> nn.Module:
    """The registered builder for cfg.arch, sized from the data."""
    _load_builders()
    return models[cfg.arch](cfg, spec, num_classes)


def model_spec(cfg: Any, spec: InputSpec, num_classes: int) -> dict[str, Any]:
    """Everything needed to rebuild the module without pickle (saved as train/model.json)."""
    return {"model": cfg.model_dump(mode="json"), "features": spec.features,
            "image_shape": list(spec.image_shape) if spec.image_shape else None,
            "num_classes": num_classes}
