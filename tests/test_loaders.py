"""Loaders: checked CSV parsing, the generic panel CSV loader and the DT Mart loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nam_mmm.data.calendar.frequency import infer_period_freq
from nam_mmm.data.panel import BRAND, FIT_WEIGHT, GMV, PERIOD, PRICE, ROW, SKU, spend_col
from nam_mmm.data.sources.dtmart import load_dtmart
from nam_mmm.data.sources.panel_csv import load_panel_csv
from nam_mmm.data.sources.parsing import (
    check_role_mapping,
    parse_dates_checked,
    read_csv_checked,
    require_columns,
    to_numeric_checked,
)
from nam_mmm.errors import DataError

DTMART = Path(__file__).resolve().parents[1].parent / "shared/data/dtmart"
needs_dtmart = pytest.mark.skipif(
    not (DTMART / "Secondfile.csv").exists(), reason=f"DT Mart data not found at {DTMART}"
)

HEADER = "week,brand,sku,sales,price,spend_tv,spend_search,nps"
ROLES = dict(
    date="week",
    hierarchy=["brand", "sku"],
    target="sales",
    media="spend_*",
    own_price="price",
    brand_health="nps",
)


def _panel_lines() -> list[str]:
    """2 brands x 2 SKUs x 6 months, written in a shuffled order (brand-major, months descending)."""
    lines = []
    months = pd.date_range("2021-01-01", periods=6, freq="MS")
    for brand in ("B", "A"):
        for sku in ("2", "1"):
            for m in reversed(months):
                sales = 1000 + 10 * m.month + (5 if brand == "A" else 0)
                lines.append(f"{m:%Y-%m-%d},{brand},{brand}{sku},{sales},{2.5 + int(sku)},{100 * m.month},{50},{40}")
    return lines


def _write(tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "panel.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _assert_one_line(err: DataError, *parts: str) -> str:
    text = str(err)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    return text


# ---------------------------------------------------------------- parsing ------------------------------


def test_read_csv_checked_strips_names_and_marks_missing(tmp_path: Path) -> None:
    path = _write(tmp_path, ["1, NA ,x", "2,\\N,", "", "3,nan,NaN"], header="a, b ,c")
    df = read_csv_checked(path)
    assert list(df.columns) == ["a", "b", "c"]
    assert df["b"].isna().all()
    assert df.loc[0, "c"] == "x"
    # the blank line 4 is dropped but keeps its numbering: row index 3 is line 5
    assert list(df.index) == [0, 1, 3]


def test_read_csv_checked_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as exc:
        read_csv_checked(path)
    _assert_one_line(exc.value, str(path), "file not found")


@pytest.mark.parametrize("content", ["", "a,b,c\n"], ids=["zero-bytes", "header-only"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    _assert_one_line(exc.value, str(path), "file is empty")


def test_require_columns_names_first_missing(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": ["1"], "b": ["2"]})
    with pytest.raises(DataError) as exc:
        require_columns(df, ["a", "zz", "yy"], "f.csv")
    text = _assert_one_line(exc.value, "f.csv", "column 'zz'", "line 1", "required column missing", "found: a, b")
    assert "yy" in text


def test_parse_dates_formats_and_errors() -> None:
    s = pd.Series(["2016-01-01", "7/1/2015", "12/31/2015"])
    out = parse_dates_checked(s, "f.csv", "d")
    assert list(out) == [pd.Timestamp("2016-01-01"), pd.Timestamp("2015-07-01"), pd.Timestamp("2015-12-31")]
    assert out.dtype == "datetime64[ns]"
    assert parse_dates_checked(pd.Series(["31.01.2016"]), "f.csv", "d", formats="%d.%m.%Y")[0] == pd.Timestamp(
        "2016-01-31"
    )
    with pytest.raises(DataError) as exc:
        parse_dates_checked(pd.Series(["2016-01-01", "foo", "bar"]), "f.csv", "d")
    _assert_one_line(exc.value, "f.csv", "column 'd'", "rows 3, 4", "unparseable date 'foo'")
    with pytest.raises(DataError) as exc:
        parse_dates_checked(pd.Series(["2016-01-01", np.nan]), "f.csv", "d")
    _assert_one_line(exc.value, "f.csv", "column 'd'", "rows 3", "missing date")


def test_to_numeric_checked() -> None:
    s = pd.Series(["1.5", np.nan, "1e3", "-2"])
    out = to_numeric_checked(s, "f.csv", "x")
    assert out.dtype == np.float64
    assert np.isnan(out[1]) and out[2] == 1000.0
    with pytest.raises(DataError) as exc:
        to_numeric_checked(pd.Series(["1", "abc", "2", "x y"]), "f.csv", "x")
    _assert_one_line(exc.value, "f.csv", "column 'x'", "rows 3, 5", "non-numeric value 'abc'")


def test_check_role_mapping() -> None:
    check_role_mapping({"own_price": "p", "cross_price": "q", "media": ["a", "b"], "units": None}, "f.csv")
    with pytest.raises(DataError) as exc:
        check_role_mapping({"own_price": "x", "cross_price": "x"}, "f.csv")
    _assert_one_line(exc.value, "f.csv", "column 'x'", "mapped to two roles: own_price and cross_price")
    with pytest.raises(DataError) as exc:
        check_role_mapping({"target": "sales", "media": ["tv", "sales"]}, "f.csv")
    _assert_one_line(exc.value, "column 'sales'", "target and media")


# ---------------------------------------------------------------- panel CSV: errors --------------------


def test_panel_missing_required_column(tmp_path: Path) -> None:
    path = _write(tmp_path, _panel_lines())
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **{**ROLES, "own_price": "avg_price"})
    _assert_one_line(exc.value, str(path), "column 'avg_price'", "line 1", "required column missing")


def test_panel_non_numeric_spend_cell(tmp_path: Path) -> None:
    lines = _panel_lines()
    cells = lines[2].split(",")
    cells[5] = "abc"  # spend_tv of data row 2 -> file line 4
    lines[2] = ",".join(cells)
    path = _write(tmp_path, lines)
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    _assert_one_line(exc.value, str(path), "column 'spend_tv'", "rows 4", "non-numeric value 'abc'")


def test_panel_unparseable_date(tmp_path: Path) -> None:
    lines = _panel_lines()
    lines[4] = "2021-13-45" + lines[4][len("2021-01-01") :]
    path = _write(tmp_path, lines)
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    _assert_one_line(exc.value, str(path), "column 'week'", "rows 6", "unparseable date '2021-13-45'")


def test_panel_column_in_two_roles(tmp_path: Path) -> None:
    path = _write(tmp_path, _panel_lines())
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **{**ROLES, "cross_price": "price"})
    _assert_one_line(exc.value, str(path), "column 'price'", "mapped to two roles: own_price and cross_price")
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **{**ROLES, "media": ["spend_tv", "nps"]})
    _assert_one_line(exc.value, str(path), "column 'nps'", "two roles")


def test_panel_glob_matching_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, _panel_lines())
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **{**ROLES, "media": "media_*"})
    _assert_one_line(exc.value, str(path), "'media_*' matches no column")


def test_panel_unknown_freq(tmp_path: Path) -> None:
    path = _write(tmp_path, _panel_lines())
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES, freq="fortnightly-ish")
    _assert_one_line(exc.value, str(path), "unknown freq")


# ---------------------------------------------------------------- panel CSV: good path -----------------


def test_panel_csv_loads_canonical(tmp_path: Path) -> None:
    path = _write(tmp_path, _panel_lines())
    panel = load_panel_csv(path, **ROLES)
    f = panel.frame
    assert len(f) == 24
    assert panel.freq == "MS"
    assert panel.channels == ["tv", "search"]
    assert panel.source == str(path)
    for col in (PERIOD, BRAND, SKU, GMV, PRICE, "nps", spend_col("tv"), spend_col("search"), ROW, FIT_WEIGHT):
        assert col in f.columns
    assert "week" not in f.columns and "sales" not in f.columns
    assert f[PERIOD].dtype == "datetime64[ns]"
    assert (f[FIT_WEIGHT] == 1.0).all()
    assert f[BRAND].map(type).eq(str).all() and f[SKU].map(type).eq(str).all()
    assert panel.brands == ["A", "B"]
    assert panel.skus == ["A1", "A2", "B1", "B2"]
    # sorted by (period, brand, sku), index reset
    assert list(f.index) == list(range(24))
    assert f[[PERIOD, BRAND, SKU]].equals(f[[PERIOD, BRAND, SKU]].sort_values([PERIOD, BRAND, SKU]))
    # _row: first row (Jan, A, A1) -- A1 is the 4th block of 6 lines written, January last in its block:
    # data row 3*6 + 5 = 23 -> file line 25
    first = f.iloc[0]
    assert (first[PERIOD], first[BRAND], first[SKU]) == (pd.Timestamp("2021-01-01"), "A", "A1")
    assert first[ROW] == 25
    raw = pd.read_csv(path)
    back = raw.iloc[int(first[ROW]) - 2]
    assert (back["week"], back["sku"], float(back["sales"])) == ("2021-01-01", "A1", first[GMV])
    assert sorted(f[ROW]) == list(range(2, 26))
    assert panel.column_sources[GMV] == f"{path}:sales"
    assert panel.column_sources[spend_col("tv")] == f"{path}:spend_tv"
    assert panel.origin(PRICE) == (str(path), "price")


def test_panel_csv_single_level_weekly_and_controls(tmp_path: Path) -> None:
    # weekly data labelled on Wednesdays, one hierarchy column, an explicit media list, one control
    weeks = pd.date_range("2021-01-06", periods=5, freq="W-WED")
    lines = [f"{w:%m/%d/%Y},{s},{100 + i},{10.0},{1.0},{i}" for i, w in enumerate(weeks) for s in ("x", "y")]
    path = _write(tmp_path, lines, header="date,product,gmv,tv,radio,temperature")
    panel = load_panel_csv(
        path, date="date", hierarchy=["product"], target="gmv", media=["tv"], controls=["temperature"]
    )
    f = panel.frame
    assert panel.freq == "W-WED"
    assert panel.channels == ["tv"] and panel.controls == ["temperature"]
    assert (f[BRAND] == f[SKU]).all()
    assert "temperature" in f.columns and spend_col("radio") not in f.columns
    assert f[PERIOD].min() == pd.Timestamp("2021-01-06")


def test_panel_csv_snaps_dates_to_period_start(tmp_path: Path) -> None:
    months = pd.date_range("2021-01-31", periods=4, freq="ME")
    lines = [f"{m:%Y-%m-%d},a,s,{1.0},{2.0},{3.0},{4.0},{5.0}" for m in months]
    path = _write(tmp_path, lines)
    panel = load_panel_csv(path, **ROLES)
    assert panel.freq == "MS"
    assert list(panel.frame[PERIOD]) == list(pd.date_range("2021-01-01", periods=4, freq="MS"))


def test_infer_freq_falls_back_on_gaps() -> None:
    monthly_gap = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-04-01", "2020-05-01"]))
    assert infer_period_freq(monthly_gap) == "MS"
    weekly_gap = pd.Series(pd.to_datetime(["2020-01-06", "2020-01-13", "2020-01-27", "2020-02-03"]))
    assert infer_period_freq(weekly_gap) == "W-MON"
    with pytest.raises(DataError):
        infer_period_freq(pd.Series(pd.to_datetime(["2020-01-06"])))


# ---------------------------------------------------------------- DT Mart ------------------------------


def test_dtmart_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_dtmart(tmp_path / "nowhere")
    _assert_one_line(exc.value, str(tmp_path / "nowhere"), "not found")
    with pytest.raises(DataError) as exc:
        load_dtmart(tmp_path)
    _assert_one_line(exc.value, str(tmp_path / "Secondfile.csv"), "file not found")


@needs_dtmart
def test_dtmart_shape_and_columns() -> None:
    panel = load_dtmart(DTMART)
    f = panel.frame
    assert len(f) == 60
    assert panel.freq == "MS"
    assert list(panel.periods) == list(pd.date_range("2015-07-01", "2016-06-01", freq="MS"))
    assert f[[PERIOD, BRAND, SKU]].equals(f[[PERIOD, BRAND, SKU]].sort_values([PERIOD, BRAND, SKU]))
    assert panel.brands == ["camera", "entertainment", "gaming"]
    assert len(panel.skus) == 5
    assert panel.channels == [
        "tv", "digital", "sponsorship", "content_marketing", "online_marketing", "affiliates", "sem", "radio", "other",
    ]
    radio = f.groupby(PERIOD)[spend_col("radio")].first()
    assert int(radio.isna().sum()) == 9
    promo = f.groupby(PERIOD)["promo_days"].first()
    assert promo[pd.Timestamp("2015-11-01")] == 8
    assert promo[pd.Timestamp("2015-12-01")] == 7
    assert promo[pd.Timestamp("2015-09-01")] == 0
    assert f["discount"].between(0, 1).all()
    assert panel.national_spend()
    assert panel.column_sources[spend_col("tv")].endswith("Secondfile.csv:TV")


@needs_dtmart
def test_dtmart_values_trace_back_to_secondfile() -> None:
    panel = load_dtmart(DTMART)
    f = panel.frame
    raw = pd.read_csv(DTMART / "Secondfile.csv")
    row = f[(f[PERIOD] == pd.Timestamp("2016-01-01")) & (f[SKU] == "Camera")].iloc[0]
    src = raw.iloc[int(row[ROW]) - 2]
    assert src["Date"] == "2016-01-01"
    assert row[GMV] == pytest.approx(src["Revenue_Camera"])
    assert row[PRICE] == pytest.approx(src["Revenue_Camera"] / src["Units_Camera"])
    assert row["mrp"] == pytest.approx(src["Mrp_Camera"] / src["Units_Camera"])
    assert row["discount"] == pytest.approx(src["Discount_Camera"] / src["Mrp_Camera"])
    assert row["nps"] == pytest.approx(47.1)
    assert row[spend_col("tv")] == pytest.approx(4.4e7)


@needs_dtmart
def test_dtmart_crosschecks_agree() -> None:
    report = load_dtmart(DTMART).report
    media = report.by_check("media_crosscheck")
    assert not [m for m in media if m.severity == "warning" and m.column == "TV"]
    assert [m for m in media if m.severity == "info"]
    assert not [m for m in report.by_check("nps_crosscheck") if m.severity == "warning"]


@needs_dtmart
def test_dtmart_crosscheck_flags_disagreement(tmp_path: Path) -> None:
    for name in ("Secondfile.csv", "MonthlyNPSscore.csv", "SpecialSale.csv"):
        shutil.copy(DTMART / name, tmp_path / name)
    media = (DTMART / "MediaInvestment.csv").read_text().splitlines()
    cells = media[1].split(",")  # July 2015, line 2
    cells[3] = "9.9"  # TV: 0.2 crores -> 9.9 crores
    media[1] = ",".join(cells)
    (tmp_path / "MediaInvestment.csv").write_text("\n".join(media) + "\n")
    report = load_dtmart(tmp_path).report
    warn = [m for m in report.by_check("media_crosscheck") if m.severity == "warning"]
    assert len(warn) == 1
    assert warn[0].column == "TV" and warn[0].periods == ["2015-07-01"] and warn[0].rows == [2]


@needs_dtmart
def test_dtmart_families() -> None:
    panel = load_dtmart(DTMART, families={"camera": ["Camera", "CameraAccessory"]})
    assert panel.brands == ["camera", "entertainmentsmall", "gamecddvd", "gaminghardware"]
    with pytest.raises(DataError) as exc:
        load_dtmart(DTMART, families={"phones": ["Mobile"]})
    _assert_one_line(exc.value, "Secondfile.csv", "unknown category 'Mobile'")
