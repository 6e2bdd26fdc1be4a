"""A user's mistake in a data file is one line naming the file, the column and the fix, with no
traceback, from `danlu init` and from the data stage (`danlu data prepare`, what `danlu run`
runs first): a real subprocess on real files."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import danlu

GOOD = "a,b,c,label\n" + "".join(f"{i % 7}.5,{i % 5},,{'xy'[i % 2]}\n" for i in range(30))

# name -> (file bytes or None for "no file" / "dir" for a folder, target, declared features,
#          words of the one line from init (None: init succeeds), words from data prepare)
CASES = {
    "empty": (b"", "label", None, ["empty.csv", "empty (0 bytes)", "header line"],
              ["empty.csv", "empty (0 bytes)"]),
    "header_only": (b"a,b,label\n", "label", None, ["header_only.csv", "no data rows", "add rows"],
                    ["header_only.csv", "no data rows", "add rows"]),
    "no_such_target": (GOOD.encode(), "Label", None,
                       ["--target", "no_such_target.csv", "did you mean 'label'"],
                       ["data.target", "no_such_target.csv", "did you mean 'label'"]),
    "one_class": (b"a,b,label\n1,2,x\n3,4,x\n5,6,x\n", "label", None,
                  ["one_class.csv", "'label'", "one value ('x')", "pick another column"],
                  ["one_class.csv", "'label'", "one value ('x')", "pick another column"]),
    "all_missing": (GOOD.encode(), "label", {"a": "number", "c": "number"}, None,
                    ["all_missing.csv", "column 'c'", "missing in every row", "data.features"]),
    # a target missing in every row (a non-number in a number column is imputed, not removed)
    "nothing_left": (b"a,b,label\n1,2.5,\n2,3.5,\n3,4.5,\n", "label",
                     {"a": "number", "b": "number"}, None,
                     ["nothing_left.csv", "cleaning removed every row", "missing_label 3",
                      "column 'label'"]),
    "too_few_rows": (b"a,label\n1,x\n2,y\n", "label", {"a": "number"}, None,
                     ["too_few_rows.csv", "2 rows", "too few to split", "data.split"]),
    "missing_file": (None, "label", None, ["missing_file.csv", "an existing file"],
                     ["missing_file.csv", "an existing file"]),
    "folder": ("dir", "label", None, ["folder.csv", "not a folder", "a file inside it"],
               ["folder.csv", "not a folder"]),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "label", None,
               ["binary.csv", "not UTF-8", "save it as UTF-8"], ["binary.csv", "not UTF-8"]),
    "nul_bytes": (b"PK\x03\x04\x00\x00a,b\n", "label", None, ["nul_bytes.csv", "binary"],
                  ["nul_bytes.csv", "binary"]),
    "utf16": ("a\tb\tlabel\n1\t2\tx\n".encode("utf-16"), "label", None,
              ["utf16.csv", "UTF-16", "save it as UTF-8"], ["utf16.csv", "UTF-16"]),
    "latin1_rows": ("a,b,label\n1,2,caf\xe9\n3,4,th\xe9\n".encode("latin-1"), "label", None,
                    ["latin1_rows.csv", "not UTF-8", "save it as UTF-8"],
                    ["latin1_rows.csv", "not UTF-8"]),
}


def _file(tmp_path, name):
    content = CASES[name][0]
    path = tmp_path / f"{name}.csv"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


def _one_line(r, words, code=2):
    assert r.returncode == code, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and "error" in lines[-1], r.stderr
    msg = lines[-1]
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[3] is not None])
def test_init_says_one_line_for_a_bad_file(tmp_path, name):
    r = danlu("init", f"csv:{_file(tmp_path, name)}", "--target", CASES[name][1],
              "--out", str(tmp_path / "recipe.yaml"), cwd=tmp_path)
    _one_line(r, CASES[name][3])
    assert not (tmp_path / "recipe.yaml").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_data_stage_says_one_line_for_a_bad_file(tmp_path, name):
    _, target, features, _, words = CASES[name]
    data = {"source": f"csv:{_file(tmp_path, name)}", "target": target}
    if features:
        data["features"] = features
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"data": data, "model": {"arch": "mlp"}}))
    r = danlu("data", "prepare", str(recipe), "--out", str(tmp_path / "runs"), cwd=tmp_path)
    _one_line(r, words)


def test_init_drops_a_column_missing_in_every_row_with_the_reason(tmp_path):
    path = tmp_path / "all_missing.csv"
    path.write_text(GOOD)
    r = danlu("init", f"csv:{path}", "--target", "label", "--out", str(tmp_path / "r.yaml"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "r.yaml").read_text()
    assert "drop: [c]" in text and "c: missing in every row" in text


def test_run_says_the_same_line_as_data_prepare(tmp_path):
    path = tmp_path / "one_class.csv"
    path.write_bytes(CASES["one_class"][0])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"data": {"source": f"csv:{path}", "target": "label"},
                                  "model": {"arch": "mlp"}}))
    r = danlu("run", str(recipe), "--out", str(tmp_path / "runs"))
    _one_line(r, CASES["one_class"][4])
