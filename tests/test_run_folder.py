"""The run folder follows docs/run_folder.md in both validation modes: the files it lists, and every CSV's columns."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from helpers import REPO_ROOT, train_in_process

DOC = REPO_ROOT / "docs" / "run_folder.md"
HYDRA_FILES = {"train.log"}  # written by Hydra's job logging, not by the package (and .hydra/)


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line.replace("|", "").strip()) <= {"-", " "}:
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def documented_files() -> dict[str, set[str]]:
    """``{file: modes}`` from the Files table (modes: 'H', 'W')."""
    section = DOC.read_text().split("## Files", 1)[1].split("\n## ", 1)[0]
    out = {}
    for name, modes, _ in _table_rows(section):
        out[name.strip("`")] = set(modes.split())
    return out


def documented_columns() -> dict[str, tuple[list[str], set[str]]]:
    """``{csv name: (columns in order, optional columns)}`` from the Columns section."""
    section = DOC.read_text().split("## Columns", 1)[1]
    out = {}
    for block in re.split(r"\n### ", section)[1:]:
        title, body = block.split("\n", 1)
        rows = _table_rows(body)
        cols = [r[0].strip("`") for r in rows]
        optional = {r[0].strip("`") for r in rows if r[-1].startswith("optional")}
        out[title.strip().strip("`")] = (cols, optional)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    short = ["trainer.max_epochs=6", "trainer.check_val_every_n_epoch=2"]
    holdout = tmp_path_factory.mktemp("holdout")
    train_in_process(holdout, short)
    walk = tmp_path_factory.mktemp("walk_forward")
    wf = ["validation=walk_forward", "data.walk_forward.initial_train=24", "data.walk_forward.test_size=5", "data.walk_forward.step=5", "data.walk_forward.val_size=4"]
    train_in_process(walk, [*short, *wf])
    return {"H": holdout, "W": walk}


def _written(root) -> set[str]:
    files = set()
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] != ".hydra" and rel.name not in HYDRA_FILES:
            files.add(re.sub(r"^fold_\d+/", "fold_<k>/", rel.as_posix()))
    return files


@pytest.mark.parametrize("mode", ["H", "W"])
def test_the_files_are_the_documented_ones(runs, mode):
    expected = {name for name, modes in documented_files().items() if mode in modes}
    assert _written(runs[mode]) == expected


@pytest.mark.parametrize("mode", ["H", "W"])
def test_every_csv_has_the_documented_columns_in_order(runs, mode):
    columns = documented_columns()
    csvs = sorted(runs[mode].rglob("*.csv"))
    assert csvs
    for path in csvs:
        assert path.name in columns, f"{path.name} has no column table in docs/run_folder.md"
        doc_cols, optional = columns[path.name]
        header = list(pd.read_csv(path, nrows=0).columns)
        patterns = [re.compile(re.sub(r"<[^>]+>", ".+", re.escape(c).replace(r"\<", "<").replace(r"\>", ">")) + "$") for c in doc_cols if "<" in c]
        required = [c for c in doc_cols if c not in optional and "<" not in c]
        assert [c for c in header if c in required] == required, f"{path.relative_to(runs[mode])}: {header}"
        undocumented = [c for c in header if c not in doc_cols and not any(p.match(c) for p in patterns)]
        assert not undocumented, f"{path.relative_to(runs[mode])}: undocumented {undocumented}"


def test_one_schema_for_both_modes(runs):
    for name in ("elasticities.csv", "roi.csv", "contributions.csv", "oos_predictions.csv"):
        h = list(pd.read_csv(runs["H"] / name, nrows=0).columns)
        w = list(pd.read_csv(runs["W"] / name, nrows=0).columns)
        assert h == w, name


def test_interval_columns_say_what_they_are(runs):
    h = pd.read_csv(runs["H"] / "elasticities.csv")
    w = pd.read_csv(runs["W"] / "elasticities.csv")
    assert set(h["interval"]) == {"row_spread_10_90"} and set(w["interval"]) == {"fold_mean_pm_1.96sd"}
    assert set(pd.read_csv(runs["H"] / "roi.csv")["interval"]) == {"none"}
    assert pd.read_csv(runs["H"] / "roi.csv")["roi_lower"].isna().all()
    w_roi = pd.read_csv(runs["W"] / "roi.csv")
    assert (w_roi["roi_lower"] <= w_roi["roi"]).all() and (w_roi["roi"] <= w_roi["roi_upper"]).all()


def test_metrics_json_is_the_summary_written_once(runs):
    h = json.loads((runs["H"] / "metrics.json").read_text())
    w = json.loads((runs["W"] / "metrics.json").read_text())
    assert {"test", "folds", "identifiability_ok", "wall_seconds", "train", "epochs"} <= set(h)
    assert {"test", "folds", "walk_forward", "acceptance_passed", "identifiability_ok"} <= set(w)
    oos = pd.read_csv(runs["W"] / "oos_predictions.csv")
    assert w["folds"] == oos["fold"].nunique() == len(pd.read_csv(runs["W"] / "folds.csv"))
    assert w["test"]["n"] == int((oos["fit_weight"] > 0).sum())
    acceptance = json.loads((runs["W"] / "acceptance.json").read_text())
    assert acceptance["passed"] == w["acceptance_passed"]
