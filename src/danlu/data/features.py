"""Which features a run has: the recipe's `data.features`, else the source's own (an image set's
pixels, a corpus's text), else inferred column by column from the data by the feature types'
`recognise` (docs/data.md). The pipeline writes the result into the run's resolved recipe."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from danlu.data.readers.base import MISSING_TOKENS  # cells that mean "no value"
from danlu.errors import DataError, RecipeError

__all__ = ["MISSING_TOKENS", "ColumnSummary", "build", "infer_features", "resolve",
           "resolve_features", "summarize"]

# Distinct values tracked per column; beyond this a column counts as "many".
MAX_DISTINCT = 1000
# A column is numeric when at least this share of its non-missing cells are numbers: the other
# cells are then dirty numbers (wrong_type rows, counted), not categories.
NUMERIC_SHARE = 0.5
# Types tried in this order when inferring (the first that recognises a column wins): numbers
# first (0/1 stays a number), then two text values (binary) before any few values (category).
INFER_ORDER = ("number", "binary", "category", "text")
_NUMBER = re.compile(r"^\s*[-+]?((\d+\.?\d*)|(\.\d+))([eE][-+]?\d+)?\s*$")
# Values this long (characters, on average) are text, not identifiers.
ID_LENGTH = 30
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|index|key)$|^(rownames|row|unnamed: ?0|)$",
                      re.IGNORECASE)
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")


@dataclass
class ColumnSummary:
    """What a feature type's `recognise` sees of a raw column (cells as text)."""

    name: str
    rows: int = 0
    missing: int = 0
    numbers: int = 0
    integers: int = 0                  # cells that are whole numbers written without a point
    low: float = float("inf")          # their smallest and largest values
    high: float = float("-inf")
    lengths: int = 0
    values: set = field(default_factory=set)
    many: bool = False                 # more than MAX_DISTINCT distinct values

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def numeric(self) -> bool:
        return self.numbers > 0 and self.numbers >= NUMERIC_SHARE * self.present

    @property
    def all_missing(self) -> bool:
        return self.present == 0

    @property
    def distinct(self) -> int:
        return MAX_DISTINCT + 1 if self.many else len(self.values)

    @property
    def mean_length(self) -> float:
        return self.lengths / max(self.present, 1)

    @property
    def id_like(self) -> bool:
        """Short values, every one distinct (a key, a code): only lets a model memorize rows.
        Long distinct values are free text, a feature."""
        distinct = len(self.values) == self.rows if not self.many else True
        return self.present == self.rows > 1 and distinct and self.mean_length < ID_LENGTH \
            and (not self.numeric or bool(_ID_NAME.search(self.name)) or self.row_numbers)

    @property
    def row_numbers(self) -> bool:
        """Every cell a distinct integer and together a run of consecutive integers (1..n, a
        data frame's saved index): the row's position, not a measurement."""
        return self.integers == self.rows > 1 and self.high - self.low + 1 == self.rows

    def describe(self) -> str:
        d = f">{MAX_DISTINCT}" if self.many else str(len(self.values))
        ex = ", ".join(repr(v if len(v) <= 24 else v[:24] + "...")
                       for v in sorted(self.values, key=str)[:3])
        return (f"{d} distinct, {self.missing / max(self.rows, 1):.0%} missing"
                + (f", e.g. {ex}" if ex else ""))

    def update(self, cells: list) -> ColumnSummary:
        for v in cells:
            self.rows += 1
            s = "" if v is None else str(v).strip()
            if s.lower() in MISSING_TOKENS:
                self.missing += 1
                continue
            self.numbers += bool(_NUMBER.match(s))
            if _INTEGER.match(s):
                self.integers += 1
                v = float(s)
                self.low, self.high = min(self.low, v), max(self.high, v)
            self.lengths += len(s)
            if not self.many:
                self.values.add(s)
                if len(self.values) > MAX_DISTINCT:
                    self.many, self.values = True, set(list(self.values)[:MAX_DISTINCT])
        return self


def summarize(reader: Any) -> dict[str, ColumnSummary]:
    """One chunk of the source's columns, read as text, summarized per column (a reader of its
    own: what a reader counts while reading belongs to the data stage's pass)."""
    chunk = next(iter(reader.chunks({c: "string" for c in reader.columns})), None)
    if chunk is None or not len(chunk):
        from danlu.data.problems import no_rows

        raise no_rows(reader.source, [*reader.columns, *([reader.target] if reader.target else [])])
    return {c: ColumnSummary(c).update(list(chunk.columns[c])) for c in reader.columns}


def infer_features(summaries: dict[str, ColumnSummary]) -> tuple[dict[str, str], dict[str, str]]:
    """({column: type}, {dropped column: why}) by the feature types' `recognise`."""
    from danlu.features import features

    kept, dropped = {}, {}
    for name, s in summaries.items():
        if s.all_missing:
            dropped[name] = "missing in every row"
            continue
        if s.distinct <= 1:
            dropped[name] = f"constant ({next(iter(s.values), None)!r}): carries no information"
            continue
        if s.id_like:
            dropped[name] = "ID-like (every value distinct): would only let a model memorize rows"
            continue
        for t in [*INFER_ORDER, *(n for n in features.names() if n not in INFER_ORDER)]:
            if features[t].recognise(s):
                kept[name] = t
                break
        else:
            dropped[name] = f"no feature type recognises it ({s.describe()})"
    return kept, dropped


def resolve_features(cfg: Any, reader: Any) -> dict[str, Any]:
    """data.features, else the source's declared features, else inferred from a chunk."""
    return resolve(cfg, reader)[0]


def resolve(cfg: Any, reader: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(features, {column: why it is not one}) as resolve_features decides them."""
    from danlu.data.config import FeatureEntry

    if cfg.features is not None:
        return cfg.features, {}
    if reader.declared:
        return {k: FeatureEntry.model_validate(v) for k, v in reader.declared.items()}, {}
    from danlu.data.readers import open_reader

    kept, dropped = infer_features(summarize(open_reader(cfg.source, cfg.target.column,
                                                         cfg.chunk_rows, cfg.drop)))
    if not kept:
        why = "; ".join(f"{c}: {r}" for c, r in list(dropped.items())[:5])
        raise DataError(f"no usable feature columns ({why}); declare them in data.features",
                        source=cfg.source)
    return {k: FeatureEntry(type=t) for k, t in kept.items()}, dropped


def build(entries: dict[str, Any] | list[tuple], reader: Any, pre: Any,
          resolved: bool = False) -> list[Any]:
    """Feature objects for recipe entries: columns looked up in the source, options from the
    entry and the preprocess section (only those the type takes)."""
    from danlu.features import build_features, features

    if resolved:
        return build_features(list(entries))
    out = []
    names = list(reader.columns)
    for name, entry in entries.items():
        cls = features[entry.type]
        if entry.columns == "*":
            columns = [c for c in names if c not in set(reader.groups)]
        elif entry.columns is not None:
            columns = list(entry.columns)
        else:
            columns = list(reader.groups.get(name, [name]))
        missing = [c for c in columns if c not in names and c not in reader.groups]
        if missing:
            raise RecipeError(f"data.features.{name}", got=missing[0],
                              expected=f"a column of {reader.source}: one of "
                                       f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
        if cls.group is None and len(columns) != 1:
            raise RecipeError(f"data.features.{name}.columns", got=columns,
                              expected=f"one column: a {entry.type} feature reads one",
                              hint=f"write one entry per column, e.g. {columns[0]}: {entry.type}")
        shape = entry.shape or reader.shapes.get(name)
        available = {"normalize": pre.normalize, "per": pre.per, "shape": shape,
                     "bins": pre.bins or None}
        options = {k: v for k, v in available.items() if k in cls.options_taken and v is not None}
        out.append((name, entry.type, columns, options))
    return build_features(out)
