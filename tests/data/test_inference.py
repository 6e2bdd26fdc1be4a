"""Column typing rules (docs/data.md "How inference types a column") on summaries of real cells."""

from __future__ import annotations

import numpy as np

from danlu.data.features import ColumnSummary, infer_features


def _summaries(columns: dict[str, list]) -> dict[str, ColumnSummary]:
    return {c: ColumnSummary(c).update([str(v) for v in cells]) for c, cells in columns.items()}


def test_a_saved_data_frame_index_is_dropped_and_measurements_are_kept() -> None:
    rng = np.random.default_rng(0)
    n = 1500  # beyond the 1,000 distinct values a summary keeps
    kept, dropped = infer_features(_summaries({
        "rownames": list(range(1, n + 1)),                  # R's / pandas' saved index
        "": list(range(n)),                                 # pandas' unnamed index column
        "age": rng.integers(18, 90, n).tolist(),            # integers, repeated
        "price": rng.choice(10 * n, n, replace=False).tolist(),  # distinct, not a run
        "income": np.round(rng.normal(100, 20, n), 2).tolist(),
        "town": [f"T{i % 120}" for i in range(n)],          # a code with 120 values
    }))
    assert set(dropped) == {"rownames", ""} and "ID-like" in dropped["rownames"]
    assert kept == {"age": "number", "price": "number", "income": "number", "town": "category"}


def test_two_text_values_are_binary_two_numbers_a_number_and_three_values_a_category() -> None:
    n = 60
    kept, dropped = infer_features(_summaries({
        "smoker": (["yes", "no", "NA", ""] * n)[:n],           # two values and missing cells
        "sex": ["M", "F", "F"] * (n // 3),
        "paid": ["True", "False"] * (n // 2),
        "flag": [0, 1, 1] * (n // 3),                          # 0/1 numbers: already ideal
        "size": ["S", "M", "L"] * (n // 3),
    }))
    assert kept == {"smoker": "binary", "sex": "binary", "paid": "binary", "flag": "number",
                    "size": "category"}
    assert not dropped
