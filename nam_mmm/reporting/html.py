"""The self-contained HTML report of a run: one file, every picture inline (base64 PNG), the style inline.

Tables are built from the run folder's CSVs; each number cell carries its file's value in ``data-value`` (and the
table its file in ``data-source``, the row its CSV row in ``data-row``), so a test can check every number shown
against the run folder. Nothing refers to the network: no ``http(s)://`` asset, no font or script from elsewhere.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.reporting.style import VERDICT_COLOURS, money, pct


def image_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _is_nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


FORMATS: dict[str, Callable] = {
    "text": lambda v: "" if _is_nan(v) else str(v),
    "int": lambda v: "" if _is_nan(v) else f"{int(v):,}",
    "num1": lambda v: "" if _is_nan(v) else f"{v:,.1f}",
    "num2": lambda v: "" if _is_nan(v) else f"{v:,.2f}",
    "num3": lambda v: "" if _is_nan(v) else f"{v:,.3f}",
    "num4": lambda v: "" if _is_nan(v) else f"{v:,.4f}",
    "signed2": lambda v: "" if _is_nan(v) else f"{v:+.2f}",
    "signed3": lambda v: "" if _is_nan(v) else f"{v:+.3f}",
    "money": lambda v: "" if _is_nan(v) else money(v),
    "pct_frac": lambda v: "" if _is_nan(v) else pct(v),
    "pct": lambda v: "" if _is_nan(v) else f"{v:.2f} %",
    "pvalue": lambda v: "" if _is_nan(v) else (f"{v:.3g}"),
}


def html_table(frame: pd.DataFrame, source: str, columns: list[tuple[str, str, str]], caption: str = "", verdict_col: str | None = None) -> dict:
    """A table for the template: ``columns`` = (CSV column, header, format of :data:`FORMATS`). ``frame`` keeps
    the CSV's row numbers as its index (filter it, do not reset it)."""
    rows = []
    for idx, r in frame.iterrows():
        cells = []
        for col, _, fmt in columns:
            v = r[col] if col in r else None
            if isinstance(v, (np.floating, np.integer)):
                v = v.item()
            numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append({
                "col": col,
                "text": FORMATS[fmt](v),
                "value": ("" if _is_nan(v) else repr(float(v))) if numeric else None,
                "colour": VERDICT_COLOURS.get(str(v)) if col == verdict_col else None,
            })
        rows.append({"row": int(idx) if isinstance(idx, (int, np.integer)) else str(idx), "cells": cells})
    return {"source": source, "headers": [h for _, h, _ in columns], "rows": rows, "caption": caption}


def render_html(context: dict) -> str:
    """The report page from ``templates/report.html.j2`` (inside the package) and ``context``."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("nam_mmm.reporting", "templates"), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)
