"""jsonl:PATH, one JSON object per line: fields as columns, the label in `target` ("label")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers.base import Chunk, Issue, Reader, ReaderOptions, check_file, schemes

__all__ = ["JsonlReader", "open_jsonl"]


@schemes.register("jsonl")
def open_jsonl(rest: str, opts: ReaderOptions) -> Reader:
    return JsonlReader(Path(rest), opts.target or "label", opts.chunk_rows, list(opts.drop))


open_jsonl.default_target = "label"  # the label field when the recipe names none


class JsonlReader(Reader):
    """The fields of the first object are the columns; a `text` field is a text feature unless
    the recipe says otherwise; a line that is not an object is an Issue."""

    def __init__(self, path: Path, target: str, chunk_rows: int, drop: list[str]):
        check_file(path, "jsonl")
        self.path, self.target, self.chunk_rows = path, target, chunk_rows
        self.label_values: list = []
        self.columns = [k for k in self._first_object() if k != target and k not in drop]
        self.declared = {"text": "text"} if "text" in self.columns else {}

    def _first_object(self) -> list[str]:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    return list(obj)
        return ["text"]

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        parse = parse or {c: "string" for c in self.columns}
        with self.path.open(encoding="utf-8") as f:
            buf: list[tuple[int, str]] = []
            for n, line in enumerate(f, start=1):
                buf.append((n, line))
                if len(buf) >= self.chunk_rows:
                    yield self._chunk(buf, parse)
                    buf = []
            if buf:
                yield self._chunk(buf, parse)

    def _chunk(self, lines: list[tuple[int, str]], parse: dict[str, str]) -> Chunk:
        n = len(lines)
        cols = {c: (np.full(n, np.nan) if how == "float" else np.full(n, "", dtype=object))
                for c, how in parse.items()}
        labels = []
        malformed, wrong = np.zeros(n, bool), {c: np.zeros(n, bool) for c in parse}
        for i, (_, line) in enumerate(lines):
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                malformed[i], obj = True, {}
            for c, how in parse.items():
                v = obj.get(c)
                if how == "float":
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        cols[c][i] = v
                    elif v is not None:
                        wrong[c][i] = True
                else:
                    cols[c][i] = v if isinstance(v, str) else (None if v is None else str(v))
            lab = obj.get(self.target)
            labels.append(lab if isinstance(lab, (str, int)) and not isinstance(lab, bool) else None)
        issues = ([Issue("malformed_line", malformed, "line", "not a JSON object")]
                  if malformed.any() else [])
        issues += [Issue("wrong_type", m, c, "not a number") for c, m in wrong.items() if m.any()]
        return Chunk(rows=np.array([k for k, _ in lines]), labels=self._codes(labels),
                     columns=cols, issues=issues)
