"""jsonl:PATH, one JSON object per line with a text field and a label field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers.base import Chunk, Issue, Reader, ReaderOptions, schemes
from danlu.errors import RecipeError

__all__ = ["JsonlReader", "open_jsonl"]


@schemes.register("jsonl")
def open_jsonl(rest: str, opts: ReaderOptions) -> Reader:
    return JsonlReader(Path(rest), opts.target or "label", opts.text_field or "text",
                       opts.chunk_rows)


class JsonlReader(Reader):
    """Text from `text_field`, the label from `target`; a line that is not an object is an Issue."""

    kind = "text"

    def __init__(self, path: Path, target: str, text_field: str, chunk_rows: int):
        if not path.is_file():
            raise RecipeError("data.source", got=f"jsonl:{path}", expected="an existing file")
        self.path, self.target, self.text_field, self.chunk_rows = path, target, text_field, chunk_rows
        self.feature_names, self.label_values = [text_field], []

    def chunks(self) -> Iterator[Chunk]:
        with self.path.open(encoding="utf-8") as f:
            buf: list[tuple[int, str]] = []
            for n, line in enumerate(f, start=1):
                buf.append((n, line))
                if len(buf) >= self.chunk_rows:
                    yield self._chunk(buf)
                    buf = []
            if buf:
                yield self._chunk(buf)

    def _chunk(self, lines: list[tuple[int, str]]) -> Chunk:
        texts, labels = [], []
        malformed = np.zeros(len(lines), bool)
        for i, (_, line) in enumerate(lines):
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                malformed[i], obj = True, {}
            t = obj.get(self.text_field)
            texts.append(t if isinstance(t, str) else "")
            lab = obj.get(self.target)
            labels.append(lab if isinstance(lab, (str, int)) and not isinstance(lab, bool) else None)
        issues = ([Issue("malformed_line", malformed, "line", "not a JSON object")]
                  if malformed.any() else [])
        return Chunk(rows=np.array([n for n, _ in lines]), labels=self._codes(labels),
                     text=np.array(texts, dtype=object), issues=issues)
