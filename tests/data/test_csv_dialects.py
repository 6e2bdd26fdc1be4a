"""The csv files users have — `;`, tab or `|` between cells, a UTF-8 byte-order mark, quoted
delimiters, gzip or zstd — read to the same values as a plain comma file, on the numeric
(pyarrow) path and on the string (csv module) path alike."""

from __future__ import annotations

import csv
import gzip
import io

import pytest

from danlu.data.readers import open_reader

ROWS = [["1.5", "2", "x", "hello, world; and | more"],
        ["3", "-4.25", "y", "plain"],
        ["5", "6", "x", 'say "hi"\tthere']]


def _write(path, delimiter=",", bom=False, codec=None):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerows([["a", "b", "label", "note"], *ROWS])
    data = (("\ufeff" if bom else "") + buf.getvalue()).encode()
    if codec == "gzip":
        data = gzip.compress(data)
    if codec == "zstd":
        import pyarrow as pa

        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(data)
        return path
    path.write_bytes(data)
    return path


def _read(source):
    """(columns, numeric path's a, b and labels, string path's note and a, wrong-length lines)."""
    num = open_reader(source, "label", 1000)
    (c1,) = num.chunks({"a": "float", "b": "float"})
    text = open_reader(source, "label", 1000)
    (c2,) = text.chunks({"a": "float", "note": "string"})
    return (num.columns, c1.columns["a"].tolist(), c1.columns["b"].tolist(), c1.labels.tolist(),
            c2.columns["note"].tolist(), c2.columns["a"].tolist(), c2.labels.tolist(),
            num.bad_lines + text.bad_lines)


@pytest.mark.parametrize("name, delimiter, bom, codec", [
    ("semicolon.csv", ";", False, None),
    ("tab.csv", "\t", False, None),
    ("pipe.csv", "|", False, None),
    ("bom.csv", ",", True, None),
    ("bom-semicolon.csv.gz", ";", True, "gzip"),
    ("data.csv.gz", ",", False, "gzip"),
    ("data.csv.zst", "|", True, "zstd"),
    ("data.tsv", "\t", True, None),
])
def test_csv_dialects_read_as_the_plain_csv(tmp_path, name, delimiter, bom, codec):
    plain = _read(f"csv:{_write(tmp_path / 'plain.csv')}")
    assert plain[0] == ["a", "b", "note"] and plain[4][0] == "hello, world; and | more"
    scheme = "tsv" if name.endswith(".tsv") else "csv"
    got = _read(f"{scheme}:{_write(tmp_path / name, delimiter, bom, codec)}")
    assert got == plain
    assert not got[0][0].startswith("\ufeff")


def test_sniffing_prefers_the_delimiter_that_keeps_rows_even(tmp_path):
    """Decimal commas in a `;` file, and a `;` inside a comma file's quoted text."""
    from danlu.data.readers.csv import sniff_delimiter

    assert sniff_delimiter("a;b;label\n1,5;2,25;x\n3,0;4;y\n") == ";"
    assert sniff_delimiter('a,text,label\n1,"x; y; z",p\n2,"u;v",q\n') == ","
    assert sniff_delimiter("one\n1\n2\n") == ","


def test_a_header_longer_than_the_sniffing_sample_is_read_whole(tmp_path):
    names = [f"column_{i:05d}" for i in range(6000)]  # ~80 KB of header, semicolons
    path = tmp_path / "wide.csv"
    path.write_text(";".join([*names, "label"]) + "\n" + ";".join(["1"] * 6000 + ["x"]) + "\n")
    assert open_reader(f"csv:{path}", "label").columns == names
