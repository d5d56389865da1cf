"""The report of a run: written from the run folder, self-contained (no network asset), its numbers are the run
folder's, the PDF has its two pages, and a run whose spend cannot separate the channels says which ones."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO_ROOT, train_in_process

WALK_FORWARD = [
    "validation=walk_forward",
    "data.walk_forward.initial_train=28",
    "data.walk_forward.test_size=6",
    "data.walk_forward.step=6",
    "data.walk_forward.val_size=4",
    "trainer.max_epochs=20",
    "identifiability.min_periods_per_channel=10",  # 30 training periods for 5 channels: the check must fire
]
ANALYSIS = ["decomposition.csv", "observed_inputs.csv", "curves_sku.csv", "diagnostics.csv", "metrics_by_unit.csv", "health.csv"]
BOOTSTRAP = ["bootstrap.csv", "prediction_band.csv", "curve_band.csv", "intervals.json"]


def _script():
    spec = importlib.util.spec_from_file_location("report_script", REPO_ROOT / "scripts" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory) -> Path:
    """Tiny holdout run, its analysis files and 2 bootstrap refits (scripts/report.py's backfill), then the report."""
    from nam_mmm.reporting.report import write_report

    run = tmp_path_factory.mktemp("holdout")
    train_in_process(run)
    _script().backfill(run, {"enabled": True, "resamples": 2, "progress": False}, None)
    write_report(run)
    return run


@pytest.fixture(scope="module")
def walk_forward_run(tmp_path_factory) -> Path:
    from nam_mmm.reporting.report import write_report

    run = tmp_path_factory.mktemp("walk")
    train_in_process(run, WALK_FORWARD)
    _script().backfill(run, {"enabled": False}, None)
    write_report(run)
    return run


class _Cells(HTMLParser):
    """Every ``<td data-value>`` with its table's ``data-source`` and its row's ``data-row``; every asset URL."""

    def __init__(self) -> None:
        super().__init__()
        self.source, self.row, self.cells, self.assets, self._cell = None, None, [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.source = a.get("data-source")
        elif tag == "tr":
            self.row = a.get("data-row")
        elif tag == "td" and "data-value" in a:
            self._cell = {"source": self.source, "row": self.row, "col": a["data-col"], "value": a["data-value"], "text": ""}
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.assets.append(a[key])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def _parse(run: Path) -> _Cells:
    p = _Cells()
    p.feed((run / "report.html").read_text(encoding="utf-8"))
    return p


@pytest.mark.parametrize("fixture", ["holdout_run", "walk_forward_run"])
def test_html_has_no_network_asset(fixture, request):
    run = request.getfixturevalue(fixture)
    html = (run / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)
    parsed = _parse(run)
    assert parsed.assets and all(a.startswith("data:image/png;base64,") for a in parsed.assets), parsed.assets[:3]
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert len(parsed.assets) == len(list((run / "plots").glob("*.png")))  # every picture drawn is in the page


@pytest.mark.parametrize("fixture", ["holdout_run", "walk_forward_run"])
def test_html_numbers_equal_the_run_folder(fixture, request):
    run = request.getfixturevalue(fixture)
    cells = _parse(run).cells
    csv_cells = [c for c in cells if c["source"].endswith(".csv")]
    sources = {c["source"] for c in csv_cells}
    assert {"roi.csv", "elasticities.csv", "metrics_by_unit.csv", "health.csv", "contributions.csv", "diagnostics.csv"} <= sources
    frames = {s: pd.read_csv(run / s, keep_default_na=False, na_values=[""]) for s in sources}
    for c in csv_cells:
        expected = frames[c["source"]].loc[int(c["row"]), c["col"]]
        if c["value"] == "":  # an empty cell in the file is an empty cell in the page
            assert pd.isna(expected) and c["text"].strip() == "", c
            continue
        assert float(c["value"]) == pytest.approx(float(expected), rel=1e-12, abs=0), c
        text = c["text"].strip().replace(",", "")
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):  # plain numbers: the shown digits are the CSV value rounded
            decimals = len(text.split(".")[1]) if "." in text else 0
            assert abs(float(text) - float(expected)) <= 0.5 * 10**-decimals + 1e-12, c
    roi = frames["roi.csv"]
    shown = {(int(c["row"]), c["col"]) for c in csv_cells if c["source"] == "roi.csv"}
    assert {(i, "roi") for i in range(len(roi))} <= shown and {(i, "roi_upper") for i in range(len(roi))} <= shown


def test_pdf_has_its_two_a4_pages(holdout_run, walk_forward_run):
    from nam_mmm.reporting.pdf import PAGES

    for run in (holdout_run, walk_forward_run):
        raw = (run / "summary.pdf").read_bytes()
        assert raw.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page\b", raw)) == len(PAGES) == 2
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", raw)
        assert boxes and all(abs(float(w) - 595.44) < 1 and abs(float(h) - 841.68) < 1 for w, h in boxes)  # A4, not cropped
        assert " | ".join(PAGES).encode() in raw  # the page titles in the document's subject


def test_analysis_files_are_written_and_documented(holdout_run, walk_forward_run):
    doc = (REPO_ROOT / "docs" / "reports.md").read_text()
    for name in ANALYSIS + BOOTSTRAP + ["report.html", "summary.pdf"]:
        assert f"`{name}`" in doc, name
    for name in ANALYSIS + BOOTSTRAP:
        assert (holdout_run / name).is_file(), name
    for name in ANALYSIS:
        assert (walk_forward_run / name).is_file(), name
    roi = pd.read_csv(holdout_run / "roi.csv")
    assert set(roi["interval"]) == {"block_bootstrap_90"}
    d = pd.read_csv(holdout_run / "decomposition.csv")
    train = d[d["split"] == "train"]
    for r in roi.itertuples():  # the per-row decomposition adds up to roi.csv's contribution
        assert train[f"media_{r.channel}_inr"].sum() == pytest.approx(r.contribution_inr, rel=1e-5)
    plots = {p.stem for p in (walk_forward_run / "plots").glob("*.png")}
    assert {"response_curves", "brand_vs_sku", "contribution_waterfall", "decomposition_over_time", "actual_vs_predicted",
            "residual_diagnostics", "roi", "elasticity_stability", "feature_importance"} <= plots


def test_report_says_which_channels_cannot_be_told_apart(walk_forward_run, holdout_run):
    import json

    ident = json.loads((walk_forward_run / "identifiability.json").read_text())
    assert not ident["ok"]
    html = (walk_forward_run / "report.html").read_text(encoding="utf-8")
    sentence = re.search(r"The data cannot tell these channels apart: ([^.]+)\.", html)
    assert sentence, "no identifiability sentence"
    named = {c.strip() for c in sentence.group(1).split(",")}
    assert named == set(ident["distinct_levels"]) and "too few periods" in html
    health = pd.read_csv(walk_forward_run / "health.csv")
    assert (health[(health["check"] == "identifiability") & health["subject"].isin(named)]["verdict"] == "fail").all()
    assert "can tell the 5 channels apart" in (holdout_run / "report.html").read_text(encoding="utf-8")


def test_pdf_of_a_run_with_many_features_and_channels_keeps_its_two_pages(walk_forward_run, tmp_path):
    """A panel with dozens of controls and channels (the shared large_business panel) once ran the ROI chart off
    page 1 (a negative axes height, and the run ended in a traceback): the lists are cut with a pointer to the
    HTML report and the chart keeps its room."""
    import dataclasses

    from nam_mmm.reporting.pdf import write_pdf
    from nam_mmm.reporting.run_data import RunData

    run = RunData.load(walk_forward_run)
    el = run.elasticities
    extra = pd.concat([el[el["level"] == "all"].assign(feature=f"control_{k}") for k in range(40)], ignore_index=True)
    crowded = dataclasses.replace(run, elasticities=pd.concat([el, extra], ignore_index=True))
    path = write_pdf(crowded, tmp_path / "summary.pdf")
    raw = path.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page\b", raw)) == 2


def test_the_interval_note_names_the_media_penalty_allowance_when_there_is_one():
    from types import SimpleNamespace

    from nam_mmm.reporting.report import _notes

    info = {"resamples": 20, "block_length": 5, "window": "w", "scored_on": "every period", "seconds": 1.0}
    assert "penalty" not in _notes(SimpleNamespace(intervals={**info, "penalty_allowance": None}), None)["intervals_note"]
    note = _notes(SimpleNamespace(intervals={**info, "penalty_allowance": "estimates under loss.lambda_media=0"}), None)["intervals_note"]
    assert note.endswith("Media penalty allowance: estimates under loss.lambda_media=0.")
