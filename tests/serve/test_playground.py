"""GET / in headless Chromium (Debian's) on the shipped digits recipe's package: draw a digit,
submit, read the label shown; and the page's model list on the main test server."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import running_server

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")


def _runs(line: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(first, last) index of each run of inked cells along one row or column."""
    runs, start = [], None
    for i, v in enumerate([*line, 0.0]):
        if v > threshold and start is None:
            start = i
        elif v <= threshold and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def _cells_to_strokes(image: np.ndarray, box: dict, threshold: float = 6.0) -> list[list]:
    """Mouse strokes along every horizontal and vertical run of inked 8x8 cells."""
    h, w = image.shape
    cw, ch = box["width"] / w, box["height"] / h
    at = lambda r, c: (box["x"] + (c + 0.5) * cw, box["y"] + (r + 0.5) * ch)  # noqa: E731
    strokes = [[at(r, a), at(r, b)] for r in range(h) for a, b in _runs(image[r], threshold)]
    strokes += [[at(a, c), at(b, c)] for c in range(w) for a, b in _runs(image[:, c], threshold)]
    return strokes


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_draw_a_digit_and_read_the_label(digits_run, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    with running_server([digits_run.run_dir]) as (url, _), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(url + "/")
        assert page.title() == "danlu playground"
        box = page.locator("#draw").bounding_box()
        shown, right = [], 0
        for digit in (0, 1, 4, 7):
            page.click("#clear")
            image = digits.images[np.flatnonzero(digits.target == digit)[0]]
            for (x0, y0), (x1, y1) in _cells_to_strokes(image, box):
                page.mouse.move(x0, y0)
                page.mouse.down()
                page.mouse.move(x1, y1, steps=4)
                page.mouse.up()
            page.click("#predict")
            page.wait_for_function("document.querySelector('#label').textContent !== '–'")
            label = page.locator("#label").inner_text()
            pixels = page.evaluate("window.playground.pixels")
            assert len(pixels) == 64 and 8 < max(pixels) <= 16  # ink, on the 0..16 scale
            # The label shown is the API's answer for exactly what the page sent...
            answer = httpx.post(f"{url}/v2/models/digits/infer", json={"inputs": [
                {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": pixels}]})
            api_label = answer.json()["outputs"][1]["data"][0]
            assert label == str(api_label)
            bars = page.locator(".bar").count()
            assert bars == 10
            shown.append(label)
            right += label == str(digit)
        page.screenshot(path=str(tmp_path / "playground.png"))
        browser.close()
    # ...and the drawing pipeline (crop, centre, shrink to 8x8 of 0..16) keeps digits readable.
    assert right >= 3, f"drew 0, 1, 4, 7; the page showed {shown}"


def test_page_lists_every_model_and_its_contract(server: str) -> None:
    html = httpx.get(f"{server}/").text
    assert "danlu playground" in html and "/*__MODELS__*/" not in html
    for name in ("digits", "iris", "fragile"):
        assert f'"name": "{name}"' in html
    assert '"labels": ["setosa", "versicolor", "virginica"]' in html
    assert '"choices": ["edinburgh", "kew", "wisley"]' in html  # iris's category field
    assert '"image_shape": [1, 8, 8]' in html and '"pixel_max": 16.0' in html  # digits' pad


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")
def test_a_table_model_is_a_form_of_its_columns(server: str, table_eval) -> None:
    """iris on the main test server: a number box per number column, a dropdown of the known
    gardens; a test row typed in shows the label evaluation computed; an empty box is null;
    any other /v1 row (a regression's {"value": ...}) is shown as it is."""
    names = ["setosa", "versicolor", "virginica"]
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(server + "/")
        page.click("nav button[data-name=iris]")
        assert page.locator("#fields input[type=number]").count() == 4
        options = page.locator("select[name=garden] option").all_inner_texts()
        assert options == ["(missing)", "edinburgh", "kew", "wisley"]
        for i in (0, 7, 15):  # row 0's garden is blank: "(missing)"
            for c, v in zip(columns, table_eval.values["features"][i].tolist(), strict=True):
                page.fill(f"input[name={c}]", repr(v))
            page.select_option("select[name=garden]", str(table_eval.values["garden"][i]))
            page.click("#predict")
            page.wait_for_function("document.querySelector('#label').textContent !== '–'")
            assert page.locator("#label").inner_text() == names[table_eval.labels[i]]
            assert page.locator(".bar").count() == 3
            sent = page.evaluate("window.playground.row")
            assert sent["garden"] == (table_eval.values["garden"][i] or None)
            page.click("#clear")
        page.click("#predict")  # every number box empty: sent as null, a missing value
        page.wait_for_function("window.playground.row !== null && "
                               "window.playground.row.sepal_length === null")
        # its answer drawn (a label for the all-missing row), so it cannot overwrite the next render
        page.wait_for_function("document.querySelector('#label').textContent !== '–'")
        assert page.evaluate("window.playground.row") == {**dict.fromkeys(columns), "garden":
                                                          "edinburgh"}
        page.evaluate("window.playground.render({value: 3.2049999, interval: [2.5, 3.9]})")
        assert page.locator("#label").inner_text() == "3.205"
        assert page.locator("#row-out").inner_text().split() == ["value", "3.205", "interval",
                                                                 "[2.5,3.9]"]
        browser.close()
