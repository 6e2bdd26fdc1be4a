"""Augmentation on real data: each kornia image step, noise and mixup; seeded; training only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris

from danlu.data.augment import Augmenter, NoAugment, build_augmenter
from danlu.data.config import AugmentStep
from danlu.errors import RecipeError
from danlu.features.normalize import Normalizer

IMAGE_STEPS = [{"rotate": {"degrees": 30}}, {"translate": {"fraction": 0.25}},
               {"scale": {"range": [0.6, 0.8]}}, {"resized_crop": {"scale": [0.3, 0.5]}},
               {"hflip": {}}, {"jitter": {"brightness": 0.5, "contrast": 0.5}},
               {"erase": {"scale": [0.2, 0.3]}}]


def _digits(n: int = 64):
    d = load_digits()
    x = d.data[:n].astype(np.float32)
    norm = Normalizer("zscore").fit(d.data)
    return x, torch.as_tensor(d.target[:n]), norm


def _aug(steps, norm, seed=0, image_shape=(1, 8, 8), classes=10, rng=(0.0, 16.0)):
    parsed = [AugmentStep.model_validate(s) for s in steps]
    return Augmenter(parsed, torch.as_tensor(norm.shift_), torch.as_tensor(norm.scale_), classes,
                     image_shape, rng, seed)


@pytest.mark.parametrize("step", IMAGE_STEPS, ids=lambda s: next(iter(s)))
def test_each_image_step_changes_digits_at_p1_and_not_at_p0(step):
    x, y, norm = _digits()
    xn = torch.as_tensor(norm.transform(x))
    name = next(iter(step))
    on = _aug([{name: {**step[name], "p": 1.0}}], norm)
    off = _aug([{name: {**step[name], "p": 0.0}}], norm)
    out, yy = on(xn, y)
    assert out.shape == xn.shape and torch.equal(yy, y)
    raw = norm.inverse_transform(out.numpy())
    changed = (np.abs(raw - x) > 0.5).any(axis=1)
    assert changed.mean() > 0.5, f"{name} changed only {changed.mean():.0%} of the images"
    if name != "jitter":  # geometry and erasing keep the pixel range (background fill = 0)
        assert raw.min() > -0.01 and raw.max() < 16.01
    same, _ = off(xn, y)
    assert torch.allclose(same, xn, atol=1e-5)  # de-normalize -> [0, 1] -> back is lossless


def test_augmenter_is_seeded_and_each_call_differs():
    x, y, norm = _digits()
    xn = torch.as_tensor(norm.transform(x))
    steps = [{"rotate": {"degrees": 15, "p": 1.0}}]
    a, b, c = _aug(steps, norm, seed=3), _aug(steps, norm, seed=3), _aug(steps, norm, seed=4)
    first = a(xn, y)[0]
    assert torch.equal(first, b(xn, y)[0]) and not torch.equal(first, c(xn, y)[0])
    assert not torch.equal(first, a(xn, y)[0])  # the next batch gets new draws


def test_augmenter_leaves_the_global_rng_alone():
    x, y, norm = _digits()
    aug = _aug([{"rotate": {"degrees": 15, "p": 1.0}}], norm)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    aug(torch.as_tensor(norm.transform(x)), y)
    assert torch.equal(torch.rand(3), expected)  # dropout and init draws do not shift


def test_gaussian_noise_has_the_recipe_std_in_normalized_units():
    d = load_iris()
    norm = Normalizer("zscore").fit(d.data)
    xn = torch.as_tensor(norm.transform(d.data))
    aug = _aug([{"noise": {"std": 0.1, "p": 1.0}}], norm, image_shape=None, classes=3)
    out, _ = aug(xn, torch.as_tensor(d.target))
    assert abs(float((out - xn).std()) - 0.1) < 0.01


def test_mixup_returns_soft_targets_that_cross_entropy_accepts():
    x, y, norm = _digits()
    xn = torch.as_tensor(norm.transform(x))
    out, soft = _aug([{"mixup": {"alpha": 0.4, "p": 1.0}}], norm)(xn, y)
    assert soft.shape == (64, 10) and torch.allclose(soft.sum(dim=1), torch.ones(64))
    assert (soft.max(dim=1).values < 1).any()  # labels are actually mixed
    # Mixed rows are convex combinations of real rows: inside each feature's range, yet new.
    assert (out >= xn.min(dim=0).values - 1e-5).all() and (out <= xn.max(dim=0).values + 1e-5).all()
    assert not torch.allclose(out, xn)
    logits = torch.randn(64, 10)
    assert torch.isfinite(torch.nn.CrossEntropyLoss()(logits, soft))
    # p = 0: the batch is untouched, the targets still come back as one-hot probabilities.
    same, hard = _aug([{"mixup": {"p": 0.0}}], norm)(xn, y)
    assert torch.equal(same, xn) and torch.equal(hard.argmax(dim=1), y)


def test_image_steps_on_a_table_name_the_recipe_path():
    norm = Normalizer("zscore").fit(load_iris().data)
    with pytest.raises(RecipeError) as info:
        _aug([{"noise": {}}, {"rotate": {}}], norm, image_shape=None, classes=3)
    assert info.value.path == "preprocess.augment.1.rotate" and "noise or mixup" in str(info.value)


def _iris_features(rows):
    from danlu.features import build_features

    (f,) = build_features([("features", "number", [f"x{j}" for j in range(4)], {})])
    return f.partial_fit(load_iris().data[rows])


def test_no_steps_build_the_identity():
    from danlu.features.category import CategoryHead

    head = CategoryHead("y", ["a", "b", "c"])
    assert isinstance(build_augmenter([], [_iris_features(slice(None))], head, 0), NoAugment)


def test_a_step_no_feature_takes_names_the_recipe_path_and_the_choices():
    from danlu.features.category import CategoryHead

    step = AugmentStep.model_validate({"rotate": {}})
    with pytest.raises(RecipeError) as info:
        build_augmenter([step], [_iris_features(slice(None))], CategoryHead("y", ["a", "b"]), 0)
    assert info.value.path == "preprocess.augment.0.rotate"
    assert "number features take: noise, mixup" in str(info.value)


def test_fit_trains_with_mixup_and_noise_on_iris():
    from danlu.features.category import CategoryHead
    from danlu.models import models
    from danlu.models.mlp import MLPConfig
    from danlu.models.packaged import Encoding
    from danlu.train.config import TrainConfig
    from danlu.train.loop import fit, predict_outputs

    d = load_iris()
    rng = np.random.default_rng(0)
    idx = rng.permutation(150)
    tr, va = idx[:110], idx[110:]
    feature, head = _iris_features(tr), CategoryHead("y", ["a", "b", "c"])
    enc = Encoding([feature])
    t = (enc.network_input({"features": d.data[tr]}), torch.as_tensor(d.target[tr]))
    v = (enc.network_input({"features": d.data[va]}), torch.as_tensor(d.target[va]))
    steps = [AugmentStep.model_validate(s) for s in ({"noise": {"std": 0.05}}, {"mixup": {"alpha": 0.2}})]
    aug = build_augmenter(steps, [feature], head, seed=0)
    torch.manual_seed(0)
    model = models["mlp"].build(MLPConfig(hidden=[32]), [feature], head)
    cfg = TrainConfig(epochs=60, batch_size=16, optimizer={"lr": 0.01}, early_stopping={"patience": 0})
    fit(model, t, v, head, cfg, seed=0, augment=aug)
    acc = (predict_outputs(model, head, v[0]).argmax(1) == v[1]).float().mean()
    assert acc >= 0.9 and aug.calls == 60 * 7


def test_noise_and_mixup_leave_a_categorys_codes_as_values_some_row_has():
    """A table's numbers are perturbed; its one-hot and embedded categories' columns stay codes."""
    from danlu.features import build_features

    rng = np.random.default_rng(0)
    small = np.array(["a", "b", "c"] * 40, dtype=object)
    big = np.array([f"t{i % 80}" for i in range(120)], dtype=object)
    num, cat, town = build_features([("features", "number", ["x", "z"], {}),
                                     ("colour", "category", ["colour"], {}),
                                     ("town", "category", ["town"], {})])
    num.partial_fit(rng.normal(size=(120, 2)))
    cat.partial_fit(small)
    town.partial_fit(big)
    from danlu.models.packaged import Encoding

    enc = Encoding([num, cat, town])
    xn = enc.network_input({"features": rng.normal(size=(120, 2)), "colour": small, "town": big})
    assert xn.shape == (120, 2 + 5 + 1)  # 2 numbers, 5 one-hot columns, 1 embedding index
    y = torch.as_tensor(rng.integers(0, 2, 120))
    steps = [{"noise": {"std": 0.5, "p": 1.0}}, {"mixup": {"alpha": 0.4, "p": 1.0}}]
    out, _ = build_augmenter([AugmentStep.model_validate(s) for s in steps],
                             [num, cat, town], type("H", (), {"size": 2})(), seed=0)(xn, y)
    assert not torch.allclose(out[:, :2], xn[:, :2])  # the numbers moved
    onehot = out[:, 2:7]
    assert set(onehot.unique().tolist()) <= {0.0, 1.0} and torch.equal(onehot.sum(1), torch.ones(120))
    assert set(out[:, 7].tolist()) <= set(xn[:, 7].tolist())  # indices some row has
