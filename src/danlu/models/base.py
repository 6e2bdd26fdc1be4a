"""The model-family plug-in: one object per family holds everything an architecture means to
danlu — its config class, the feature types it takes, how it is built, saved and loaded, the
runtimes it can be served in, and the hooks compression asks for. Stages ask the family; they
never test `arch`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from danlu.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from danlu.features.base import Feature, Head
    from danlu.models.config import ModelSection

__all__ = ["WIDTH_FAMILY_VARIANTS", "Family", "input_layer", "models"]

# The default compress.variants of a family with width students (`scaled`), magnitude and
# structured pruning (`prunable`, `widths`) and static int8: the MLP and the CNN.
WIDTH_FAMILY_VARIANTS = (
    {"name": "pruned80", "prune": {"sparsity": 0.8}},
    {"name": "slim50", "prune": {"method": "structured", "ratio": 0.5}},
    {"name": "int8", "quantize": {"mode": "static"}},
    {"name": "student", "distill": {"width": 0.5}},
    {"name": "student-int8", "from": "student", "quantize": {"mode": "static"}},
)


def input_layer(features: list[Feature]) -> tuple[nn.Module | None, int]:
    """(the features' learned parts over the network input (danlu.features.graph.Embed), or None
    when no feature has one; the width of the vector the next layer sees)."""
    parts = [(f.width(), f.learned()) for f in features]
    if all(p is None for _, p in parts):
        return None, sum(w for w, _ in parts)
    from danlu.features.graph import Embed

    return (Embed([(w, p[0] if p else None) for w, p in parts]),
            sum(p[1] if p else w for w, p in parts))


class Family:
    """Subclass, set the class attributes, implement `build`; register with `@models.register`."""

    name: ClassVar[str]
    config: ClassVar[type[ModelSection]]
    # Feature types the network takes (its input is their parts, concatenated in recipe order).
    accepts: ClassVar[tuple[str, ...]]
    # Runtimes export builds and measures for it (entries of danlu.serve.runtimes), and the one
    # served when none passes the parity gate (None: export fails instead).
    runtimes: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    fallback: ClassVar[str | None] = None
    # Rows per inference batch (memory grows with it: a transformer's with batch x length^2).
    predict_batch: ClassVar[int] = 1024

    def check(self, cfg: ModelSection, features: list[Feature]) -> None:
        """Refuse features this family cannot take (a RecipeError naming model.arch)."""
        from danlu.errors import RecipeError

        types = sorted({f.type for f in features})
        wrong = [t for t in types if t not in self.accepts]
        if wrong or not features:
            fits = sorted((n for n in models.names() if set(types) <= set(models[n].accepts)),
                          key=lambda n: len(models[n].accepts))  # the most specific first
            raise RecipeError("model.arch", got=cfg.arch,
                              expected=f"a model for {', '.join(types) or 'no'} features "
                                       f"({cfg.arch} takes {', '.join(self.accepts)})",
                              hint=f"use model: {{arch: {fits[0]}}}" if fits else None)

    def bind(self, cfg: ModelSection, features: list[Feature]) -> None:
        """Fix what the features' encoding needs from the model (a text model's tokenizer)."""

    def build(self, cfg: ModelSection, features: list[Feature], head: Head) -> nn.Module:
        """The network: the features' parts (one tensor) -> the head's raw output."""
        raise NotImplementedError

    def prepare(self, net: nn.Module, train_cfg: Any) -> nn.Module:
        """The network as training wants it (e.g. wrapped in LoRA adapters)."""
        return net

    def save(self, net: nn.Module, folder: Path, head: Head) -> None:
        """Write the trained weights into `folder` (safetensors, never pickle)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))

    def load(self, cfg: ModelSection, features: list[Feature], head: Head,
             folder: Path) -> nn.Module:
        """The network saved in `folder`, in eval mode on the CPU."""
        from safetensors.torch import load_file

        net = self.build(cfg, features, head)
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        return net.eval()

    def hf_folder(self, model: Any, folder: Path) -> bool:
        """Write `model` (a loaded model folder, danlu.models.load) into `folder` as a Hugging
        Face folder that transformers' Auto classes load (export's hf/). False, writing nothing:
        the family has no Hugging Face form."""
        return False

    def starter(self, features: list[Feature], rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model section, train section) of a starter recipe (`danlu init`) for these features
        and this many rows: what the family would pick without tuning."""
        return {"arch": self.name}, {}

    def tune_space(self, model: dict[str, Any], train: dict[str, Any], rows: int
                   ) -> dict[str, dict[str, Any]]:
        """tune.space for `danlu init --tune N`: the keys worth searching around the starter
        (`model`, `train` as `starter` wrote them). Every family has a learning rate."""
        lr = float(train.get("optimizer", {}).get("lr", 1e-3))
        return {"train.optimizer.lr": {"log_float": [lr / 10, lr * 10]}}

    # ---- compression hooks (danlu.compress asks these; it never tests `arch`) -------------
    # quantize.mode values the family takes: static/qat int8 QDQ, dynamic int8, fp16, auto.
    quantize_modes: ClassVar[tuple[str, ...]] = ("static", "dynamic", "fp16", "auto", "qat")
    # ONNX Runtime pre-processing options (quant_pre_process) for the family's exported graphs.
    quantize_preprocess: ClassVar[dict[str, Any]] = {}
    # What to do instead of a step the family does not take (said in the RecipeError).
    compress_hint: ClassVar[str | None] = None

    def compress_variants(self) -> list[dict[str, Any]]:
        """compress.variants when the recipe lists none (plain data, validated by compress):
        what any family takes, its graph in dynamic int8; families with width students and
        pruning list more (WIDTH_FAMILY_VARIANTS)."""
        return [{"name": "int8", "quantize": {"mode": "dynamic"}}] \
            if "dynamic" in self.quantize_modes else []

    def scaled(self, cfg: ModelSection, width: float) -> ModelSection | None:
        """A student's config: every width times `width` (knowledge distillation)."""
        return None

    def student(self, teacher: Any, cfg: Any, where: str) -> tuple[ModelSection, nn.Module]:
        """(config, untrained network) of the student that `cfg` (compress's DistillConfig) asks
        of `teacher` (a loaded model folder): `cfg.student`, else the teacher's config scaled by
        `cfg.width`, built fresh for the teacher's features and head. `where` is the dotted
        recipe path of the distill step, for errors."""
        from danlu.errors import RecipeError

        s_cfg = cfg.student if cfg.student is not None else self.scaled(teacher.cfg, cfg.width)
        if s_cfg is None:
            raise RecipeError(f"{where}.width", got=cfg.width,
                              expected=f"a student model: the {self.name} family has no width "
                                       "scaling", hint=self.compress_hint or
                              f"name one: {where}.student: {{arch: ..., ...}}")
        fam = models[s_cfg.arch]
        try:
            fam.check(s_cfg, teacher.features)
        except RecipeError as e:
            raise RecipeError(f"{where}.student.arch", got=e.got, expected=e.expected,
                              hint=e.hint) from None
        return s_cfg, fam.build(s_cfg, teacher.features, teacher.head)

    def prunable(self, net: nn.Module) -> list[tuple[nn.Module, str]] | None:
        """The (module, parameter name) pairs magnitude pruning zeroes: every Conv and Linear
        weight (biases and norms kept). None: the family takes no magnitude pruning."""
        from torch import nn

        return [(m, "weight") for m in net.modules()
                if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)]

    def widths(self, net: nn.Module, cfg: ModelSection) -> ModelSection | None:
        """The config whose layer widths are those of `net` (after structured pruning); None:
        the family takes no structured pruning."""
        return None


class _Families(Registry):
    """A Registry whose decorator takes a Family class and stores one instance of it."""

    def register(self, name: str):
        add = super().register(name)

        def register_class(cls: type[Family]) -> type[Family]:
            cls.name = name
            add(cls())
            return cls

        return register_class


# Model families by `model.arch`; danlu.models adds the built-ins on first lookup.
models: Registry[Family] = _Families("model", "model.arch")
