"""Time-series splits: walk-forward folds (§6.5) and a fixed train/validation/test split (§3.8).

Splits are made on the calendar of periods, never on rows, so every SKU of a period lands on the same side.
An optional inner validation slice is carved from the end of each training window (for early stopping);
the test periods are never seen by training, validation or any fitted statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from nam_mmm.errors import ConfigError


@dataclass(frozen=True)
class Fold:
    """One split of the calendar. Periods are sorted ``DatetimeIndex`` objects; val and test may be empty."""

    index: int
    train: pd.DatetimeIndex
    val: pd.DatetimeIndex
    test: pd.DatetimeIndex

    @property
    def fit_periods(self) -> pd.DatetimeIndex:
        """Periods whose statistics may be used for scaling: training periods only."""
        return self.train

    def describe(self, fmt: str = "%Y-%m-%d") -> dict:
        def span(p: pd.DatetimeIndex) -> str:
            return f"{p[0].strftime(fmt)} … {p[-1].strftime(fmt)} ({len(p)})" if len(p) else "—"

        return {"fold": self.index, "train": span(self.train), "val": span(self.val), "test": span(self.test)}


def _count(size: int | float, n: int, name: str) -> int:
    if isinstance(size, float) and 0 < size < 1:
        return max(1, int(round(size * n)))
    if int(size) != size or size < 0:
        raise ConfigError(f"{name} must be a whole number of periods or a fraction in (0, 1), got {size}")
    return int(size)


@dataclass
class WalkForwardSplitter:
    """Expanding or rolling walk-forward folds.

    Attributes:
        initial_train: periods in the first training window (int, or fraction of the calendar).
        test_size: periods tested per fold.
        step: periods the window moves between folds.
        mode: ``expanding`` (training window grows) or ``rolling`` (fixed length ``initial_train``).
        max_folds: cap on the number of folds (the last ones are kept), or None.
        val_size: periods at the end of each training window held out for early stopping (0 = none).
    """

    initial_train: int | float = 6
    test_size: int = 1
    step: int = 1
    mode: str = "expanding"
    max_folds: int | None = None
    val_size: int = 0

    def split(self, periods: pd.DatetimeIndex) -> list[Fold]:
        periods = pd.DatetimeIndex(sorted(pd.DatetimeIndex(periods).unique()))
        n = len(periods)
        n_train = _count(self.initial_train, n, "initial_train")
        if self.mode not in ("expanding", "rolling"):
            raise ConfigError(f"walk-forward mode must be expanding or rolling, got {self.mode!r}")
        if self.test_size < 1 or self.step < 1:
            raise ConfigError("test_size and step must be >= 1")
        if n_train - self.val_size < 1:
            raise ConfigError(f"initial_train ({n_train}) must exceed val_size ({self.val_size})")
        if n_train + self.test_size > n:
            raise ConfigError(f"{n} periods cannot hold initial_train={n_train} plus test_size={self.test_size}")
        folds = []
        end = n_train
        while end + self.test_size <= n:
            start = 0 if self.mode == "expanding" else end - n_train
            window = periods[start:end]
            cut = len(window) - self.val_size
            folds.append(Fold(len(folds), window[:cut], window[cut:], periods[end : end + self.test_size]))
            end += self.step
        if self.max_folds is not None and len(folds) > self.max_folds:
            folds = folds[-self.max_folds :]
            folds = [Fold(i, f.train, f.val, f.test) for i, f in enumerate(folds)]
        return folds


@dataclass
class HoldoutSplitter:
    """A fixed train / validation / test split of the calendar (sizes in periods or fractions)."""

    test_size: int | float = 0.15
    val_size: int | float = 0.15

    def split(self, periods: pd.DatetimeIndex) -> list[Fold]:
        periods = pd.DatetimeIndex(sorted(pd.DatetimeIndex(periods).unique()))
        n = len(periods)
        n_test = _count(self.test_size, n, "test_size")
        n_val = _count(self.val_size, n, "val_size") if self.val_size else 0
        if n - n_test - n_val < 2:
            raise ConfigError(f"{n} periods leave fewer than 2 training periods after test={n_test}, val={n_val}")
        a, b = n - n_test - n_val, n - n_test
        return [Fold(0, periods[:a], periods[a:b], periods[b:])]
