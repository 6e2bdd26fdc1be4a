"""Every registered model, sized from real data shapes, exports to ONNX and matches PyTorch."""

from __future__ import annotations

import pytest

from danlu.models import models
from danlu.models.config import CNNConfig, MLPConfig
from danlu.testing import check_model_exports

CASES = {  # arch -> (config, features, image_shape)
    "mlp": (MLPConfig(hidden=[32, 16]), 30, None),
    "cnn": (CNNConfig(channels=[4, 8], hidden=16), 64, (1, 8, 8)),
}


# Text models take token ids, not feature rows: their contract is tests/models/test_text.py
# (TextPackaged outputs, LoRA merge parity); ONNX export of text models is issue 9's export.
TEXT_ARCHS = ("transformer",)


def test_every_registered_model_has_a_contract_case():
    from danlu.models import _load_builders

    _load_builders()
    assert sorted([*CASES, *TEXT_ARCHS]) == models.names()


@pytest.mark.parametrize("arch", sorted(CASES))
def test_model_exports_and_matches_onnx(arch):
    cfg, features, shape = CASES[arch]
    parity = check_model_exports(cfg, features, shape, num_classes=5)
    assert parity["passed"] and parity["rows"] == 37 and parity["label_agreement"] == 1.0
    assert parity["max_abs_diff"] <= 1e-5


def test_cnn_on_non_image_data_names_the_fix():
    from danlu.errors import RecipeError

    with pytest.raises(RecipeError, match="data.image_shape"):
        check_model_exports(CNNConfig(), 30, None, 3)
