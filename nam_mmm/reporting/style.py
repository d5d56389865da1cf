"""One style for every picture and number of a report: a colour-blind-safe palette and business units.

Colours are the Okabe–Ito palette (distinguishable with every common colour-vision deficiency). Money is shown
in Indian units: ₹ crore (10⁷ rupees) when the numbers reach a crore, ₹ lakh (10⁵) when they reach a lakh,
otherwise rupees; shares and errors in %.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
GREY = "#7F7F7F"
LIGHT = "#D9D9D9"
ACTUAL = "#000000"
CRORE = 1e7
LAKH = 1e5
VERDICT_COLOURS = {"pass": "#009E73", "warn": "#E69F00", "fail": "#D55E00", "skipped": "#7F7F7F"}


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def money_scale(values) -> tuple[float, str]:
    """(divisor, unit label) for a set of rupee amounts: crore, lakh or rupees by the largest absolute value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    top = float(np.abs(v).max()) if len(v) else 0.0
    if top >= CRORE:
        return CRORE, "₹ crore"
    if top >= LAKH:
        return LAKH, "₹ lakh"
    return 1.0, "₹"


def money(value: float, digits: int = 2) -> str:
    """One rupee amount in words a marketer reads: ``₹12.34 crore``, ``₹5.60 lakh``, ``₹950``."""
    if value is None or not np.isfinite(value):
        return "n/a"
    div, unit = money_scale([value])
    sign = "−" if value < 0 else ""
    if div == 1.0:
        return f"{sign}₹{abs(value):,.0f}"
    return f"{sign}₹{abs(value) / div:,.{digits}f} {unit.split()[1]}"


def pct(value: float, digits: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage (0.123 → 12.3 %)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value * 100:{'+' if signed else ''}.{digits}f} %"


def num(value: float, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:{'+' if signed else ''},.{digits}f}"


@contextlib.contextmanager
def report_style():
    """Matplotlib settings of every report figure (Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from cycler import cycler

    rc = {
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.labelsize": 9,
        "axes.prop_cycle": cycler(color=OKABE_ITO),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.axisbelow": True,
        "grid.color": "#E6E6E6",
        "grid.linewidth": 0.6,
        "legend.frameon": False,
        "legend.fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "savefig.bbox": "tight",
    }
    with plt.rc_context(rc):
        yield plt
