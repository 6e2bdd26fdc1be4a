"""`category`: a column of few distinct values. As an input: a vocabulary fitted on the training
split (+ `__missing__`, `__unknown__`), looked up by the torch-free encoder; one-hot in the
graph, or a learned embedding in the network when the vocabulary is large (ONEHOT_MAX).
As a head: classification (softmax; labels and probabilities; accuracy, F1, ... with intervals)."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.data.readers.base import MISSING_TOKENS
from danlu.features.base import Feature, Head, features, heads, spec

__all__ = ["CategoryFeature", "CategoryHead", "MISSING", "UNKNOWN"]

MISSING, UNKNOWN = "__missing__", "__unknown__"
# At most this many distinct values (and under half of the rows) make a column a category; up
# to LARGE_CATEGORIES short values (a code, a town) when each value has ten rows on average.
MAX_CATEGORIES = 100
LARGE_CATEGORIES = 1000
SHORT = 30
# A vocabulary (with __missing__ and __unknown__) larger than this is a learned embedding inside
# the network instead of one-hot columns: fewer inputs, and similar values can share a vector.
ONEHOT_MAX = 64


def embedding_dim(size: int) -> int:
    """fast.ai's rule of thumb for a category's embedding width, 1.6 * size^0.56, at most 64."""
    return int(min(64, round(1.6 * size ** 0.56)))


def _key(v: Any) -> str:
    """A cell as its vocabulary key: None, NaN, blank and the missing tokens a number column
    knows ("NA", "N/A", "null", "?", ..., any case) are missing; 3.0 and "3" are "3"."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return MISSING
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return MISSING if s.lower() in MISSING_TOKENS else s


@features.register("category")
class CategoryFeature(Feature):
    type = "category"
    parse = "string"
    tabular = True

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        n = column.distinct
        few = n <= MAX_CATEGORIES and n <= max(2, column.rows // 2)
        coded = n <= LARGE_CATEGORIES and n <= column.rows // 10 and column.mean_length < SHORT
        if not column.many and n > 1 and (few or coded):
            return f"a category ({column.describe()})"
        return None

    def hashes(self, values: np.ndarray) -> np.ndarray:
        from danlu.data.dedup import text_hashes

        return text_hashes(np.array([_key(v) for v in values], dtype=object), fold=False)

    def partial_fit(self, values: np.ndarray) -> CategoryFeature:
        counts = self.__dict__.setdefault("counts_", {})
        for v in values:
            k = _key(v)
            counts[k] = counts.get(k, 0) + 1
        return self

    def state_dict(self) -> dict[str, Any]:
        seen = sorted(k for k in getattr(self, "counts_", {}) if k != MISSING)
        return {"vocabulary": [*seen, MISSING, UNKNOWN]}

    @property
    def embedded(self) -> bool:
        """True when the vocabulary is large enough for a learned embedding (ONEHOT_MAX)."""
        return len(self.index) > ONEHOT_MAX

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> CategoryFeature:
        vocab = list(state["vocabulary"])
        self.counts_ = {k: 1 for k in vocab if k not in (MISSING, UNKNOWN)}
        return self

    @property
    def index(self) -> dict[str, int]:
        idx = getattr(self, "_index", None)
        if idx is None:
            idx = self._index = {k: i for i, k in enumerate(self.state_dict()["vocabulary"])}
        return idx

    def client_input(self):
        return spec(self.name, "BYTES", [-1])

    def graph_inputs(self):
        return [spec(self.name, "INT64", [-1])]

    def encode(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Vocabulary indices; a value never seen in training is `__unknown__` (never an error)."""
        index, unknown = self.index, self.index[UNKNOWN]
        flat = np.asarray(values, dtype=object).reshape(-1)
        return {self.name: np.fromiter((index.get(_key(v), unknown) for v in flat), np.int64,
                                       len(flat))}

    continuous = False  # one-hot columns or an index: noise and mixup leave them alone

    def unseen(self, values: np.ndarray) -> int:
        return int((self.encode(values)[self.name] == self.index[UNKNOWN]).sum())

    def table_columns(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """Ordinal codes in the fitted vocabulary, `__missing__` as NaN: a native categorical
        column for a tree model (a value unseen in training keeps the `__unknown__` code)."""
        codes = self.encode(values)[self.name].astype(np.float64)
        codes[codes == self.index[MISSING]] = np.nan
        return codes[:, None], len(self.index)

    def width(self) -> int:
        return 1 if self.embedded else len(self.index)

    def learned(self):
        if not self.embedded:
            return None
        from danlu.features.graph import Lookup

        dim = embedding_dim(len(self.index))
        return Lookup(len(self.index), dim), dim

    def form(self) -> dict[str, Any]:
        choices = [k for k in self.index if k not in (MISSING, UNKNOWN)]
        return {"name": self.name, "type": self.type, "widget": "choice", "choices": choices}

    def module(self):
        from danlu.features.graph import AsIndex, OneHot

        return AsIndex() if self.embedded else OneHot(self.width())

    def examples(self, batch: Any) -> list[Any]:
        import torch

        return [(torch.zeros(2, dtype=torch.int64), {0: batch})]


@heads.register("category")
class CategoryHead(Head):
    """Classification: one logit per label; the package returns probabilities and the label."""

    type = "category"
    epoch_metrics = ("loss", "accuracy", "f1_macro")
    default_metric = "val.accuracy"
    metric_names = ("loss", "accuracy", "balanced_accuracy",
                    *(f"{m}_{a}" for m in ("precision", "recall", "f1")
                      for a in ("macro", "micro", "weighted")))

    def targets(self, reader: Any, codes: np.ndarray, after_cleaning: bool = False) -> np.ndarray:
        """Label indices into the final (sorted) label names, which become `labels`; fewer
        than two classes among the rows left is one line naming the target."""
        from danlu.data.problems import one_class

        if not reader.fixed_labels:
            _refuse_continuous(reader.label_values, reader.target, reader.source)
        self.labels, y = _label_names(reader, codes)
        present = np.unique(y)
        if len(present) < 2:
            raise one_class(reader.source, reader.target, [self.labels[i] for i in present],
                            after_cleaning=after_cleaning)
        return y

    @property
    def size(self) -> int:
        return len(self.labels)

    def outputs(self):
        return [spec("probabilities", "FP32", [-1, len(self.labels)]), spec("label", "INT64", [-1])]

    def loss(self):
        from torch import nn

        return nn.CrossEntropyLoss()  # takes class indices, or mixup's soft targets as they are

    def module(self):
        from danlu.features.graph import Classify

        return Classify()

    def scores(self, out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """Every classification metric of evaluate.metrics for probabilities `out`."""
        import torch

        from danlu.evaluate.metrics import classification_metrics

        return classification_metrics(torch.as_tensor(np.asarray(out, np.float64)),
                                      torch.as_tensor(np.asarray(y, np.int64)), self.labels)

    def evaluate(self, out: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> dict[str, Any]:
        from danlu.evaluate.classification import score_classification

        return score_classification(out, y, self.labels, cfg, seed)

    def interval(self, out: np.ndarray, y: np.ndarray, metric: str,
                 seed: int = 0) -> list[float] | None:
        from danlu.evaluate.stats import CI_METRICS, bootstrap_ci

        if metric not in CI_METRICS:
            return None
        pred = np.asarray(out).argmax(axis=1)
        return bootstrap_ci(y, pred, n_classes=self.size, seed=seed)[metric]

    def compare(self, y: np.ndarray, out: np.ndarray, reference: np.ndarray,
                seed: int = 0) -> dict[str, Any]:
        """The accuracy difference with a paired bootstrap interval and McNemar's test."""
        from danlu.evaluate.stats import compare_labels

        return compare_labels(y, np.asarray(out).argmax(axis=1),
                              np.asarray(reference).argmax(axis=1), seed=seed)

    def soft_loss(self, student: Any, teacher: Any, temperature: float) -> Any:
        """T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch (Hinton et
        al. 2015; T² keeps the gradient's scale independent of T)."""
        from torch.nn import functional as F

        T = temperature
        return T * T * F.kl_div(F.log_softmax(student / T, dim=1),
                                F.log_softmax(teacher / T, dim=1), log_target=True,
                                reduction="batchmean")

    def curves(self, out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        import torch

        from danlu.evaluate.metrics import curves

        return curves(torch.as_tensor(np.asarray(out, np.float64)),
                      torch.as_tensor(np.asarray(y, np.int64)), self.labels)

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: metrics[k] for k in ("accuracy", "balanced_accuracy", "f1_macro",
                                         "precision_macro", "recall_macro")}

    def invalid(self, codes: np.ndarray, values: list, column: str | None) -> list[Any]:
        """None; but a target of many distinct non-integer numbers stops the data stage at the
        first chunk that shows it (once more than CONTINUOUS_CLASSES values are seen)."""
        if len(values) > CONTINUOUS_CLASSES and not getattr(self, "_checked", False):
            self._checked = True
            _refuse_continuous(values, column)
        return []

    def new_targets(self, reader: Any, codes: np.ndarray) -> np.ndarray:
        """Indices into this model's labels, matched by name."""
        from danlu.data.readers import label_name
        from danlu.errors import DataError

        names = [label_name(v) for v in reader.label_values]
        unknown = [names[k] for k in np.unique(codes) if names[k] not in self.labels]
        if unknown:
            raise DataError(f"labels {unknown} are not classes of this model (its classes: "
                            f"{', '.join(self.labels)})", source=reader.source)
        index = {lab: i for i, lab in enumerate(self.labels)}
        return np.array([index.get(n, -1) for n in names], np.int64)[codes]

    def rows(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Per row: the label name, its index and a {label name: probability} dict."""
        probs, idx = outputs["probabilities"], outputs["label"].reshape(-1)
        names = self.labels or [str(j) for j in range(probs.shape[-1])]
        return [{"label": names[i] if 0 <= i < len(names) else str(i), "label_index": i,
                 "probabilities": dict(zip(names, p, strict=False))}
                for p, i in zip(probs.tolist(), idx.tolist(), strict=True)]


def _label_names(reader: Any, y: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Final label names (sorted unless the source fixes them) and y recoded to match."""
    from danlu.data.readers import label_name

    if reader.fixed_labels:
        return [str(v) for v in reader.label_values], y
    values = reader.label_values
    order = sorted(range(len(values)), key=lambda i: (isinstance(values[i], str), values[i]))
    remap = np.empty(max(len(values), 1), np.int64)
    remap[order] = np.arange(len(order))
    return [label_name(values[i]) for i in order], remap[y] if len(y) else y


# A classification target with more distinct values than this, all numbers and some not whole,
# is a continuous quantity: hundreds of "classes" that each occur once or twice.
CONTINUOUS_CLASSES = 50


def _refuse_continuous(values: list, column: str | None, source: str | None = None) -> None:
    """A DataError naming the fix when a classification target is a continuous number."""
    from danlu.errors import DataError

    if len(values) <= CONTINUOUS_CLASSES:
        return
    numbers = []
    for v in values:
        try:
            numbers.append(float(v))
        except (TypeError, ValueError):
            return
    if all(n.is_integer() for n in numbers):
        return
    column = column or "label"
    raise DataError(f"target {column!r} is a continuous number ({len(values)} distinct values "
                    f"seen, e.g. {', '.join(repr(v) for v in values[:3])}), not classes; use "
                    f"`data.target: {{column: {column}, head: number}}` for regression",
                    source=source)
