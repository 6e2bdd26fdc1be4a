"""Recipe section `export` (pydantic only, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from danlu.data.config import Section

__all__ = ["ExportConfig", "Tolerance"]


class Tolerance(Section):
    # Max |probability difference| to the float32 PyTorch model on the test split.
    atol: float = Field(gt=0)
    # Smallest share of test texts on which the candidate gives the float32 model's label.
    min_label_agreement: float = Field(ge=0, le=1)


def _tolerances() -> dict[str, Tolerance]:
    # bf16 keeps 8 bits of mantissa and int8 rounds weights and activations: both move
    # probabilities by up to a few hundredths and may flip a borderline label (ENV.md: pooled
    # cosine 0.9999 in bf16, 0.992 in per-channel int8).
    return {"bfloat16": Tolerance(atol=0.05, min_label_agreement=0.99),
            "int8": Tolerance(atol=0.1, min_label_agreement=0.98)}


class ExportConfig(Section):
    # ONNX opset for the dynamo exporter; 20 is its default in torch 2.13.
    opset: int = Field(20, ge=17)
    # Max |probability difference| allowed between ONNX Runtime and PyTorch on the test split
    # (float32 candidates; their labels must agree on every row).
    parity_atol: float = Field(1e-4, gt=0)
    # Package version written into danlu-model.json and served as the v2 model version.
    version: str = "1"
    # Text models: the runtime served by default. auto = the fastest at batch 32 among the
    # candidates that pass the parity and speed gates; a name forces that candidate.
    runtime: Literal["auto", "torch", "onnxruntime", "onnxruntime-int8"] = "auto"
    # Text models: dtype of the torch runtime; auto = bfloat16 where the CPU has bf16 kernels
    # (AMX / AVX-512 BF16), else float32 (emulated bf16 is slower than fp32).
    torch_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    # Text models: also build model.int8.onnx (ORT dynamic int8, per-channel; ~4x smaller).
    int8: bool = True
    # Text models: write hf/, a Hugging Face folder (AutoModelForSequenceClassification and
    # AutoTokenizer load it; push it to a hub as it is). It is also the torch runtime's folder
    # (instead of torch/), so it costs a few kB of tokenizer config; only a package without the
    # torch runtime pays for its weights. Families without a Hugging Face form ignore it.
    hf: bool = True
    # Text models: parity tolerances of the bf16 and int8 candidates vs float32 PyTorch.
    tolerances: dict[Literal["bfloat16", "int8"], Tolerance] = Field(default_factory=_tolerances)
    # Text models: threads for every candidate (2 = the CI machine's cores), timed runs per
    # batch size (median; interleaved with the float32 reference), and how much slower than
    # float32 PyTorch eager at batch 32 a candidate may be (timing noise on shared cores).
    threads: int = Field(2, ge=1)
    latency_runs: int = Field(10, ge=3)
    speed_tolerance: float = Field(0.10, ge=0)
