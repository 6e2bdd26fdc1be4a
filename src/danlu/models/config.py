"""Recipe section `model`: the family's own config class, chosen by `arch` (no torch).

Every family registers a config subclass of `ModelSection`; `ModelConfig` validates a `model:`
mapping with the class of its `arch` (looked up in the `models` registry), so a family added by a
plug-in validates like a built-in one and errors keep their dotted paths (model.hidden.0 ...).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import SerializeAsAny, WrapValidator
from pydantic_core import PydanticCustomError

from danlu.data.config import Section

__all__ = ["DEFAULT_ARCH", "ModelConfig", "ModelSection"]

DEFAULT_ARCH = "cnn"  # the default job (digits) trains a CNN


class ModelSection(Section):
    """The base of every family's config: `arch` names the family."""

    arch: str


def _by_arch(value: Any, handler: Any) -> ModelSection:
    if isinstance(value, ModelSection):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("model_section", "a mapping with `arch`, got {got}",
                                  {"got": type(value).__name__})
    from danlu.models.base import models
    from danlu.registry import closest

    arch = value.get("arch", DEFAULT_ARCH)
    if not isinstance(arch, str) or arch not in models:
        near = closest(str(arch), models.names())
        raise PydanticCustomError(
            "unknown_arch", "{arch!r} is not a model; one of {names}{hint}",
            {"arch": arch, "names": ", ".join(models.names()),
             "hint": f" (did you mean {near!r}?)" if near else ""})
    return models[arch].config.model_validate({**value, "arch": arch})


# A `model:` section: the registered family's config class, dumped with all its fields.
ModelConfig = Annotated[SerializeAsAny[ModelSection], WrapValidator(_by_arch)]
