"""The HTML pages in a real browser: headless Chromium, driven over the DevTools protocol.

Each page is loaded at a phone's and a desktop's width and must: log no console error or
warning and throw nothing; request nothing but itself and its data: URIs; show its tokens and
charts (a box with area, visible, images decoded, alt text); fit the screen's width; and look
like something (a screenshot that is not blank). `make test` installs Debian's ``chromium``
and sets GRU_REQUIRE_BROWSER=1, so there these tests cannot be skipped.
"""

import io
import os
import re

import numpy as np
import pytest
from matplotlib.image import imread

from browser import Browser, find_chromium
from gru.tasks.explanations import explain
from viz_runs import LONG_REVIEW, adding_run, sentiment_run

SCREENS = {"phone": {"width": 390, "height": 844, "mobile": True}, "desktop": {"width": 1280, "height": 900}}  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        message = "chromium is not installed (make test installs it: apt-get install chromium)"
        if os.environ.get("GRU_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    with Browser(executable) as browser:
        yield browser


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The pages a user gets: a run's report and explanations of a long and a short review."""
    _, run = sentiment_run(tmp_path_factory.mktemp("browser") / "seed")
    return {
        "report": run / "report.html",
        "adding report": adding_run(tmp_path_factory.mktemp("browser") / "adding") / "report.html",
        "explain long": explain(run, LONG_REVIEW),
        "explain short": explain(run, "fine", out=run.parent / "short.html"),
    }


def blank_fraction(png: bytes) -> float:
    """The share of pixels of the most common color (1.0: a blank picture)."""
    pixels = (imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(np.int64)
    colors = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]  # (height, width)
    counts = np.unique(colors, return_counts=True)[1]
    return counts.max() / counts.sum()


def check_page(page, screen: dict) -> None:
    """What every page must do in the browser (see the module docstring)."""
    assert page.console == []
    assert page.requests[0] == page.url
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:]), page.requests
    images = page.elements("img")
    assert images and all(i["visible"] and i["loaded"] and i["alt"].strip() for i in images), images
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == screen["width"]  # nothing sticks out sideways
    assert all(i["right"] <= screen["width"] for i in images)
    png = page.screenshot()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(io.BytesIO(png), format="png").shape[:2] == (screen["height"], screen["width"])
    assert blank_fraction(png) < 0.97  # white page, text and colors


@pytest.mark.parametrize("screen", SCREENS)
def test_the_explanation_shows_its_tokens_and_charts(browser, pages, screen):
    page = browser.open(pages["explain long"], **SCREENS[screen])
    check_page(page, SCREENS[screen])
    tokens = page.elements(".tok")
    assert len(tokens) == 28 and all(t["visible"] for t in tokens)  # 20 read + 8 cut
    assert [t["text"] for t in page.elements(".tok.cut")][:2] == ["⟨start⟩", "this"]
    unknown = page.elements(".tok.unk")
    assert unknown and all(t["visible"] for t in unknown)
    assert "honestly" in [t["text"] for t in unknown]
    shades = page.evaluate(
        "Array.from(document.querySelectorAll('.tok[data-step]')).map(e => [getComputedStyle(e).backgroundColor, e.title])"
    )
    # One fixed scale for every text: a token's opacity is 0.06 + 0.64 (1 − z̄), not stretched
    # over this text's range (the browser keeps an opacity to about 1/255).
    for color, title in shades:
        opacity = float(re.search(r"rgba\(234, 88, 12, ([0-9.]+)\)", color).group(1))
        update = float(re.search(r"1 − z̄ = ([0-9.]+)", title).group(1))
        assert opacity == pytest.approx(0.06 + 0.64 * update, abs=0.006), (color, title)
    bars = page.elements(".legend .swatch")
    ranges = page.elements(".legend .swatch .range")
    assert len(bars) == len(ranges) == 2 and all(r["visible"] for r in ranges)
    for bar, box in zip(bars, ranges, strict=True):  # the range box lies inside its 0–1 bar
        assert bar["left"] <= box["left"] and box["right"] <= bar["right"] + 2
    notes = page.elements(".note")
    assert any("The text was truncated" in n["text"] and n["visible"] for n in notes)
    assert len(page.elements("img")) == 2  # the probability line and the heatmaps
    page.close()


def test_a_one_word_explanation_and_the_adding_report_load_cleanly(browser, pages):
    for name in ("explain short", "adding report"):
        page = browser.open(pages[name], **SCREENS["phone"])
        check_page(page, SCREENS["phone"])
        page.close()


@pytest.mark.parametrize("screen", SCREENS)
def test_the_report_shows_its_results_curves_and_examples(browser, pages, screen):
    page = browser.open(pages["report"], **SCREENS[screen])
    check_page(page, SCREENS[screen])
    headings = [h["text"] for h in page.elements("h2") if h["visible"]]
    assert headings[:4] == ["Results", "Training", "Examples", "Data"]
    assert all(c["visible"] for c in page.elements(".card")) and len(page.elements(".card")) == 2
    assert page.elements("img")[0]["alt"].startswith("Training curves")
    full = page.screenshot(full_page=True)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert imread(io.BytesIO(full), format="png").shape[0] == height > SCREENS[screen]["height"]
    page.close()


def test_the_browser_check_catches_errors_and_requests(browser, tmp_path):
    # The checks above can fail: a page that fetches from the network and logs errors is caught.
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><img src="http://127.0.0.1:9/x.png" alt="x">'
        '<script>console.error("boom"); throw new Error("broken")</script></body></html>'
    )
    page = browser.open(bad)
    assert "http://127.0.0.1:9/x.png" in page.requests
    assert "console.error: boom" in page.console
    assert any("Error: broken" in line for line in page.console)
    assert blank_fraction(page.screenshot()) > 0.99  # a blank page is told apart
    page.close()


@pytest.fixture(scope="module")
def task_reports(forecast_trained, textgen_trained, anomaly_trained):
    """The report.html of a tiny forecast, textgen and anomaly run."""
    return {
        "forecast": forecast_trained[1] / "report.html",
        "textgen": textgen_trained[1] / "report.html",
        "anomaly": anomaly_trained[1] / "report.html",
    }


@pytest.mark.parametrize("task", ["forecast", "textgen", "anomaly"])
def test_the_forecast_textgen_and_anomaly_reports_show_results_examples_and_figures(
    browser, task_reports, task
):
    for screen in SCREENS:
        page = browser.open(task_reports[task], **SCREENS[screen])
        check_page(page, SCREENS[screen])
        headings = [h["text"] for h in page.elements("h2") if h["visible"]]
        assert headings[:3] == ["Results", "Training", "Examples"]
        assert ("Figures" in headings) == (task != "textgen")  # textgen: the curves only
        cards = page.elements(".card")
        assert cards and all(c["visible"] for c in cards)
        images = page.elements("img")
        assert images[0]["alt"].startswith("Training curves")
        assert len(images) == (1 if task == "textgen" else 2)
        tables = [t for t in page.elements("table") if t["visible"]]
        assert len(tables) >= 4  # results, history, examples, data, ...
        if task == "textgen":  # the generated sample, its lines kept
            sample = page.elements("td.lines")
            assert len(sample) == 1 and sample[0]["visible"] and "\n" in sample[0]["text"]
        if task == "anomaly":  # the planted anomalies and the alarms
            captions = [p["text"] for p in page.elements("p") if p["visible"]]
            assert any(c.startswith("The anomalies planted") for c in captions)
            assert any(c.startswith("The GRU's alarms") for c in captions)
        page.close()
