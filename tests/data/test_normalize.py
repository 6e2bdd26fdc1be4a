"""Normalizers on real data: zscore, minmax, robust, none; per feature or per channel; streaming."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from danlu.data.stats import RunningStats
from danlu.features.normalize import Normalizer, make_normalizer

REFERENCE = {"zscore": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


@pytest.mark.parametrize("kind", ["zscore", "minmax", "robust"])
def test_matches_scikit_learn_on_breast_cancer(kind):
    x = load_breast_cancer().data
    ours = Normalizer(kind).fit(x).transform(x)
    ref = REFERENCE[kind]().fit_transform(x)
    assert np.allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["zscore", "minmax", "robust", "none"])
def test_constant_columns_of_digits_map_to_zero_without_dividing_by_zero(kind):
    x = load_digits().data  # pixel 0 is 0 in every image; others are nearly constant
    assert (x[:, 0] == 0).all()
    n = Normalizer(kind).fit(x)
    out = n.transform(x)
    assert np.isfinite(out).all() and (n.scale_ > 0).all()
    assert (out[:, 0] == 0).all()


@pytest.mark.parametrize("kind", ["zscore", "minmax", "robust"])
def test_streaming_partial_fit_equals_fit(kind):
    x = load_breast_cancer().data
    whole = Normalizer(kind).fit(x)
    chunked = Normalizer(kind)
    for part in np.array_split(x, 7):
        chunked.partial_fit(part)
    assert np.allclose(whole.shift_, chunked.shift_, rtol=1e-6)
    assert np.allclose(whole.scale_, chunked.scale_, rtol=1e-6)


def test_robust_statistics_past_the_sample_are_close_approximations():
    rng = np.random.default_rng(0)
    x = rng.standard_cauchy((200_000, 3)) * [1, 10, 100]  # heavy tails: where robust matters
    n = Normalizer("robust", sample=20_000)
    for part in np.array_split(x, 20):
        n.partial_fit(part)
    median, iqr = np.median(x, axis=0), np.subtract(*np.percentile(x, [75, 25], axis=0))
    # Rank error ~ sqrt(p (1 - p) / 20000) = 0.35 percentile points: a few % of the IQR.
    assert np.allclose(n.shift_, median, atol=0.05 * iqr)
    assert np.allclose(n.scale_, iqr, rtol=0.05)
    assert "approximate" in n.state_dict()["quantiles"]


def test_per_channel_statistics_are_pooled_and_written_per_feature():
    x = load_digits().data
    rgb = np.hstack([x, 2 * x, x + 5])  # three "channels" of 8x8
    n = Normalizer("zscore", per="channel", image_shape=[3, 8, 8]).fit(rgb)
    assert n.shift_.shape == (192,)
    for c, ch in enumerate((x, 2 * x, x + 5)):
        assert np.allclose(n.shift_[c * 64:(c + 1) * 64], ch.mean(), rtol=1e-5)
        assert np.allclose(n.scale_[c * 64:(c + 1) * 64], ch.std(), rtol=1e-5)
    out = n.transform(rgb)
    assert np.allclose(out[:, :64].mean(), 0, atol=1e-5) and np.allclose(out[:, :64].std(), 1, atol=1e-4)


def test_per_channel_needs_an_image_shape():
    with pytest.raises(ValueError, match="needs image data"):
        Normalizer("zscore", per="channel")


def test_state_dict_is_json_with_kind_shift_scale_and_round_trips():
    import json

    x = load_breast_cancer().data
    n = Normalizer("robust").fit(x)
    state = json.loads(json.dumps(n.state_dict()))
    assert {"kind", "shift", "scale"} <= set(state) and len(state["shift"]) == 30
    again = make_normalizer(state)
    assert np.array_equal(again.transform(x), n.transform(x))
    assert np.allclose(again.inverse_transform(again.transform(x)), x, rtol=1e-4, atol=1e-3)


def test_running_stats_welford_matches_numpy_on_shifted_data():
    # Large offset + small spread: the case where the naive sum-of-squares formula loses digits.
    x = load_breast_cancer().data + 1e9
    s = RunningStats(x.shape[1])
    for part in np.array_split(x, 13):
        s.update(part)
    assert np.allclose(s.mean, x.mean(axis=0)) and np.allclose(s.std, x.std(axis=0), rtol=1e-6)
    assert np.array_equal(s.min, x.min(axis=0)) and np.array_equal(s.max, x.max(axis=0))


def test_robust_per_channel_is_baked_into_the_exported_graph(tmp_path):
    import json

    import danlu
    from tests.conftest import DIGITS

    res = danlu.run(DIGITS, {"preprocess.normalize": "robust", "preprocess.per": "channel",
                             "train.epochs": 1, "evaluate.gate": {}}, out=tmp_path, until="export")
    meta = json.loads((res.package_dir / "danlu-model.json").read_text())
    (pixels,) = meta["features"]
    assert pixels["type"] == "image" and pixels["name"] in meta["preprocessing"]["in_graph"]
    norm = pixels["state"]["normalize"]
    assert norm["kind"] == "robust" and norm["per"] == "channel" and len(norm["shift"]) == 64
    assert len(set(norm["shift"])) == 1 and len(set(norm["scale"])) == 1  # one channel
    assert res.metrics["export"]["parity_label_agreement"] == 1.0
