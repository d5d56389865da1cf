"""Intervals that measure estimation uncertainty: refits on moving-block bootstrap resamples of periods.

The ``lower``/``upper`` of a holdout run's ``elasticities.csv`` are the spread of row-level values (operating
points, not uncertainty), and re-scoring one fitted model on resampled rows says nothing about how much the
*estimate* would move with other data. Here the model is **refitted** on resamples of the calendar:

* **Moving-block bootstrap of periods.** The training periods ``1 … n`` are cut into overlapping blocks of
  ``block_length`` consecutive periods; ``ceil(n / block_length)`` block starts are drawn uniformly with
  replacement and the blocks concatenated (truncated to ``n``). Every SKU of a drawn period comes with it, so
  the cross-section stays intact and the serial dependence within a block survives (an i.i.d. row bootstrap
  would break both). A period drawn ``k`` times enters the fit with weight ``k`` (0: left out): the fit loss and
  the function-space penalty are weighted means, so this is exactly a fit on the resampled rows, and every row
  keeps its own carry-over lags (spend of the real earlier periods), which concatenated blocks would cut.
  The inner early-stopping periods are not resampled; the fold's scaler is the original window's.
* **One refit per resample**, with the run's own builders (model, loss, strategy, trainer and callbacks) and a
  fresh seed, so the interval also holds the optimizer's seed-to-seed variation.
* **The same rows as the point estimate.** Every refit is scored on the rows the run's tables are computed on
  (holdout: the model's training rows; walk-forward: every period), so a replicate is the same quantity as the
  point in ``elasticities.csv`` / ``roi.csv``.

Interval at level ``1 − α`` (``interval`` column), :func:`bias_aware_interval`:

* the bootstrap interval of the fit the refits resample (θ_ref: holdout, the run's model; walk-forward, the last
  fold's model, trained on every period before the last test block): the basic (reverse-percentile) interval
  ``[2θ_ref − q_{1−α/2}, 2θ_ref − q_{α/2}]`` of the replicates θ*, widened to hold θ_ref and the percentile
  interval ``[q_{α/2}, q_{1−α/2}]``, so it is never narrower than either;
* walk-forward only: the fold spread ``z · sd`` across the fold models (the variation when the window moves);
* a bias allowance ``|mean θ* − θ_ref| + |θ̂ − θ_ref|``: the bootstrap's own estimate of the estimator's bias
  (a shrunk, shape-constrained fit drifts when refitted on fewer distinct periods) plus, under walk-forward,
  the gap between the reported point θ̂ (the fold-ensemble mean, whose early members saw half the data) and the
  fit the refits resample. Its sign is not known, so it widens both sides.

* when ``loss.lambda_media: cv`` chose the media penalty: a penalty allowance (:func:`penalty_allowance`), on the
  side it points to, of how far the estimates move under the other penalties whose inner forecast error was within
  the tolerance. The shrinkage holds on every resample alike, so the refits cannot show the bias it causes; the
  inner forecast that chose it could not reject the weaker penalties, so neither can the interval.

They add in quadrature to the lower and upper half-widths around the reported point θ̂. Under holdout the
fold spread and the second bias term are zero. The rule without the penalty allowance was chosen on the recovery
suite's seed 4 (one panel per scenario) before it was scored on seeds 1–3 (``experiments/bench/intervals.md``);
what it cannot cover is a bias neither the resamples nor the admissible penalties show.

:func:`block_bootstrap` runs the refits (in parallel processes when ``processes > 1``, a progress bar on stderr),
:func:`bootstrap_intervals` turns a :class:`~nam_mmm.evaluation.run_result.RunResult` and its replicates into the
run folder's tables.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import Fold

ELASTICITY_KEYS = ["level", "unit", "feature"]
ROI_VALUES = ["roi", "marginal_roi", "contribution_inr", "share_of_gmv"]
INTERVAL_PREFIX = "block_bootstrap"


@dataclass
class IntervalConfig:
    """``intervals`` in the config.

    Attributes:
        enabled: run the bootstrap at the end of training.
        resamples: number of block-bootstrap refits (each one full training run).
        block_length: periods per block; ``None`` = :func:`auto_block_length` of the resampled window.
        level: coverage of the interval (0.9 → the 5 % and 95 % ends).
        processes: refits in parallel worker processes (1 = in this process).
        progress: a progress bar on stderr.
        seed: resampling seed (refit ``b`` trains with seed ``run seed + 1 + b``).
    """

    enabled: bool = True
    resamples: int = 20
    block_length: int | None = None
    level: float = 0.9
    processes: int = 1
    progress: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 2:
            raise ValueError(f"intervals.resamples must be at least 2, got {self.resamples}")
        if not 0.5 <= self.level < 1:
            raise ValueError(f"intervals.level must lie in [0.5, 1), got {self.level}")
        if self.block_length is not None and self.block_length < 1:
            raise ValueError(f"intervals.block_length must be at least 1 period, got {self.block_length}")


def interval_name(level: float, combined: bool) -> str:
    """``block_bootstrap_90`` (holdout) or ``block_bootstrap_folds_90`` (walk-forward, with the fold spread)."""
    pct = f"{level * 100:g}".replace(".", "_")
    return f"{INTERVAL_PREFIX}_folds_{pct}" if combined else f"{INTERVAL_PREFIX}_{pct}"


def auto_block_length(n_periods: int) -> int:
    """``round(n^(1/3))``, at least 2 and at most ``n / 2`` (the textbook rate for a block bootstrap of a mean):
    2 periods for a year of months, 5 for two years of weeks."""
    return int(max(1, min(max(2, round(n_periods ** (1 / 3))), n_periods // 2)))


def moving_block_counts(n: int, block_length: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) how often each of ``n`` consecutive periods is drawn by one moving-block resample of length ``n``."""
    if n < 1:
        raise ValueError("nothing to resample: the window has no periods")
    block = min(block_length, n)
    starts = rng.integers(0, n - block + 1, size=math.ceil(n / block))
    idx = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
    return np.bincount(idx, minlength=n)


class ResampledDataModule(PanelDataModule):
    """A fold whose training rows carry the block-bootstrap count of their period as a factor on the fit weight.

    ``counts`` is (len(fold.train),): the count of each training period, in calendar order."""

    def __init__(self, table: FeatureTable, fold: Fold, counts: np.ndarray, batch_size: int | None = None, seed: int = 0) -> None:
        self.counts = np.asarray(counts, dtype=float)
        if len(self.counts) != len(fold.train):
            raise ValueError(f"{len(self.counts)} counts for {len(fold.train)} training periods")
        super().__init__(table, fold, batch_size=batch_size, seed=seed)

    def setup(self, stage: str | None = None) -> None:
        if self.scaler is None:
            a = self.arrays
            position = pd.Series(np.arange(len(self.fold.train)), index=self.fold.train)
            row_period = a.periods[a.period]
            train = np.isin(row_period, self.fold.train)
            factor = np.ones(len(a.weight))
            factor[train] = self.counts[position.loc[row_period[train]].to_numpy()]
            a.weight = a.weight * factor
        super().setup(stage)


@dataclass
class BootstrapResult:
    """The replicates of the refits.

    ``elasticities``: ``resample``, level, unit, feature, elasticity; ``roi``: ``resample``, channel, roi,
    marginal_roi, contribution_inr, share_of_gmv; ``periods``: ``resample``, period, predicted (rupees, summed
    over SKUs) on every period; ``counts``: (B, n) period counts; ``curves``: each refit's response curves; plus
    the settings and the wall time."""

    elasticities: pd.DataFrame
    roi: pd.DataFrame
    periods: pd.DataFrame
    counts: np.ndarray
    window: pd.DatetimeIndex
    block_length: int
    split: str
    seconds: float
    failures: list[str] = field(default_factory=list)
    curves: pd.DataFrame | None = None  # resample, feature, brand, x, effect_log_gmv: each refit's curve_table

    @property
    def resamples(self) -> int:
        return int(self.elasticities["resample"].nunique()) if len(self.elasticities) else int(self.roi["resample"].nunique())

    def replicate_table(self) -> pd.DataFrame:
        """One long table of every replicate value (``bootstrap.csv``): resample, table, level, unit, quantity, value."""
        el = self.elasticities.assign(table="elasticities").rename(columns={"feature": "quantity", "elasticity": "value"})
        roi = self.roi.melt(id_vars=["resample", "channel"], value_vars=[c for c in ROI_VALUES if c in self.roi], var_name="quantity", value_name="value")
        roi = roi.assign(table="roi", level="channel").rename(columns={"channel": "unit"})
        cols = ["resample", "table", "level", "unit", "quantity", "value"]
        return pd.concat([el[cols], roi[cols]], ignore_index=True)


@dataclass
class _Job:
    table: FeatureTable
    fold: Fold
    reference: PanelDataModule
    split: str
    make_module: Callable
    make_trainer: Callable
    counts: np.ndarray
    seed: int
    batch_size: int | None


_JOB: _Job | None = None  # what a forked worker process refits (closures cannot be pickled; fork shares them)


def _refit(b: int) -> tuple[int, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    import lightning as L
    import torch

    from nam_mmm.evaluation.attribution import curve_table, elasticity_table, predictions, roi_table
    from nam_mmm.training.runner import fit_fold

    job = _JOB
    assert job is not None, "no bootstrap job"
    L.seed_everything(job.seed + 1 + b, workers=True, verbose=False)
    dm = ResampledDataModule(job.table, job.fold, job.counts[b], batch_size=job.batch_size, seed=job.seed + 1 + b)
    module = job.make_module(dm)
    trainer = job.make_trainer(job.fold, module)
    fitted = fit_fold(dm, module, trainer)
    model = fitted.module.model.eval()
    with torch.no_grad():
        el = elasticity_table(model, job.reference, job.split)[["level", "unit", "feature", "elasticity"]]
    roi = roi_table(model, job.reference, job.split)
    roi = roi[["channel", *[c for c in ROI_VALUES if c in roi]]]
    pred = predictions(model, job.reference, "all").groupby("period", sort=True)["predicted"].sum().reset_index()
    curves = curve_table(model, job.reference)[["feature", "brand", "x", "effect_log_gmv"]]
    return b, el.assign(resample=b), roi.assign(resample=b), pred.assign(resample=b), curves.assign(resample=b)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    from nam_mmm.entry import quiet_lightning  # noqa: PLC0415  the same quiet console as the run

    quiet_lightning()


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="bootstrap refits", unit="fit", file=sys.stderr, leave=True)


def _run_refits(config: IntervalConfig, bar) -> tuple[list, list[str]]:
    """Every refit of the job in ``_JOB``, in forked worker processes where ``config.processes`` allows, else
    here: the results (in completion order) and a one-line failure per refit that raised."""
    results, failures = [], []
    processes = max(1, min(int(config.processes), config.resamples, os.cpu_count() or 1))
    if processes > 1 and "fork" in _start_methods():
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(processes, mp_context=mp.get_context("fork"), initializer=_init_worker) as pool:
            futures = {pool.submit(_refit, b): b for b in range(config.resamples)}
            for fut in as_completed(futures):
                try:
                    results.append(fut.result())
                except Exception as err:  # noqa: BLE001  one failed refit must not lose the others
                    failures.append(f"resample {futures[fut]}: {type(err).__name__}: {err}".splitlines()[0])
                if bar is not None:
                    bar.update(1)
    else:
        for b in range(config.resamples):
            try:
                results.append(_refit(b))
            except Exception as err:  # noqa: BLE001
                failures.append(f"resample {b}: {type(err).__name__}: {err}".splitlines()[0])
            if bar is not None:
                bar.update(1)
    return results, failures


def block_bootstrap(
    table: FeatureTable,
    fold: Fold,
    reference: PanelDataModule,
    split: str,
    make_module: Callable,
    make_trainer: Callable,
    config: IntervalConfig,
    seed: int = 0,
    batch_size: int | None = None,
) -> BootstrapResult:
    """Refit the model ``config.resamples`` times on moving-block resamples of ``fold.train``.

    ``make_module(dm)`` / ``make_trainer(fold, module)`` are the run's builders (``nam_mmm.entry`` builds them from
    the config; pass ones without loggers). Each refit is scored on ``reference``'s ``split`` rows (the rows of the
    run's attribution tables). A refit that raises is recorded in ``failures`` and left out; fewer than two
    successful refits is an error."""
    global _JOB
    started = time.perf_counter()
    n = len(fold.train)
    block = config.block_length or auto_block_length(n)
    rng = np.random.default_rng([int(config.seed), int(seed), n])
    counts = np.stack([moving_block_counts(n, block, rng) for _ in range(config.resamples)])
    _JOB = _Job(table, fold, reference, split, make_module, make_trainer, counts, int(seed), batch_size)
    bar = _progress(config.resamples, config.progress)
    try:
        results, failures = _run_refits(config, bar)
    finally:
        _JOB = None
        if bar is not None:
            bar.close()
    if len(results) < 2:
        raise RuntimeError(f"block bootstrap: {len(results)} of {config.resamples} refits succeeded ({'; '.join(failures[:3])})")
    results.sort(key=lambda r: r[0])
    el = pd.concat([r[1] for r in results], ignore_index=True)
    roi = pd.concat([r[2] for r in results], ignore_index=True)
    periods = pd.concat([r[3] for r in results], ignore_index=True)
    curves = pd.concat([r[4] for r in results], ignore_index=True)
    return BootstrapResult(el, roi, periods, counts, fold.train, block, split, time.perf_counter() - started, failures, curves)


def _start_methods() -> list[str]:
    import multiprocessing as mp

    return mp.get_all_start_methods()


# ---------------------------------------------------------------------------------------------- intervals
def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def basic_interval(point: np.ndarray, reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the basic bootstrap interval ``[2θ̂ − q_hi, 2θ̂ − q_lo]`` widened to hold θ̂ and the percentile
    interval ``[q_lo, q_hi]``. ``reps`` is (B, K), ``point`` (K,)."""
    a = (1 - level) / 2
    q_lo, q_hi = np.nanquantile(reps, a, axis=0), np.nanquantile(reps, 1 - a, axis=0)
    lo = np.minimum.reduce([2 * point - q_hi, q_lo, point])
    hi = np.maximum.reduce([2 * point - q_lo, q_hi, point])
    return lo, hi


def bias_aware_interval(
    center: np.ndarray,
    reference: np.ndarray,
    reps: np.ndarray,
    fold_sd: np.ndarray | None,
    level: float,
    penalty_up: np.ndarray | None = None,
    penalty_down: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per column (see the module docstring): around ``center`` (the reported point θ̂), half-widths from
    :func:`basic_interval` of ``reps`` around ``reference`` (θ_ref, the fit the refits resample), ``z · fold_sd``
    (None or 0 under holdout), the bias allowance ``|mean θ* − θ_ref| + |θ̂ − θ_ref|`` and, on the side each points
    to, the penalty allowance (``penalty_up`` / ``penalty_down`` ≥ 0, see :func:`penalty_allowance`), added in
    quadrature."""
    center, reference = np.asarray(center, float), np.asarray(reference, float)
    lo_b, hi_b = basic_interval(reference, reps, level)
    spread = _z(level) * np.nan_to_num(np.zeros_like(center) if fold_sd is None else np.asarray(fold_sd, float))
    up = np.zeros_like(center) if penalty_up is None else np.nan_to_num(np.asarray(penalty_up, float))
    down = np.zeros_like(center) if penalty_down is None else np.nan_to_num(np.asarray(penalty_down, float))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bias = np.abs(np.nanmean(reps, axis=0) - reference) + np.abs(center - reference)
    lo = center - np.sqrt((reference - lo_b) ** 2 + spread**2 + bias**2 + down**2)
    hi = center + np.sqrt((hi_b - reference) ** 2 + spread**2 + bias**2 + up**2)
    return lo, hi


@dataclass
class PenaltyAllowance:
    """How far the estimates move between the media penalty chosen by ``loss.lambda_media: cv`` and the other
    penalties its inner forecast could not tell apart, on the inner window: per elasticity (``ELASTICITY_KEYS``)
    and per channel, the largest move up (``*_up``) and down (``*_down``), both ≥ 0."""

    elasticities: pd.DataFrame  # level, unit, feature, up, down
    roi: pd.DataFrame  # channel, roi_up, roi_down, marginal_roi_up, marginal_roi_down
    chosen: float
    admissible: list[float]

    def describe(self) -> str:
        others = [g for g in self.admissible if g != self.chosen]
        if not others:
            return f"none: loss.lambda_media={self.chosen:g} was the only penalty within the inner forecast's tolerance"
        return f"estimates under loss.lambda_media={', '.join(f'{g:g}' for g in others)} (within the inner forecast's tolerance of the chosen {self.chosen:g})"


def penalty_allowance(estimates: dict[float, tuple[pd.DataFrame, pd.DataFrame]], admissible: list[float], chosen: float) -> PenaltyAllowance:
    """The :class:`PenaltyAllowance` from the inner models' tables (``estimates``: penalty → (elasticity table,
    ROI table), as :func:`~nam_mmm.evaluation.attribution.elasticity_table` / ``roi_table`` give them).

    A forecast that cannot tell two penalties apart cannot tell their estimates apart either, and a shrinkage
    that holds on every bootstrap resample alike is invisible to the refits: so the interval also reaches as far
    as the estimates move under the admissible penalties, on the side they move to. Zero when the chosen penalty
    is the only admissible one."""
    el0, roi0 = estimates[chosen]
    el_key = el0.set_index(ELASTICITY_KEYS)["elasticity"]
    roi_key = roi0.set_index("channel")[["roi", "marginal_roi"]]
    el_up = pd.Series(0.0, index=el_key.index)
    el_down = el_up.copy()
    roi_up = pd.DataFrame(0.0, index=roi_key.index, columns=roi_key.columns)
    roi_down = roi_up.copy()
    for lam in admissible:
        if lam == chosen or lam not in estimates:
            continue
        el, roi = estimates[lam]
        d = (el.set_index(ELASTICITY_KEYS)["elasticity"].reindex(el_key.index) - el_key).fillna(0.0)
        el_up, el_down = np.maximum(el_up, d), np.maximum(el_down, -d)
        dr = (roi.set_index("channel")[["roi", "marginal_roi"]].reindex(roi_key.index) - roi_key).fillna(0.0)
        roi_up, roi_down = np.maximum(roi_up, dr), np.maximum(roi_down, -dr)
    el_table = el_key.index.to_frame(index=False).assign(up=el_up.to_numpy(), down=el_down.to_numpy())
    roi_table = pd.DataFrame(
        {
            "channel": roi_key.index,
            "roi_up": roi_up["roi"].to_numpy(),
            "roi_down": roi_down["roi"].to_numpy(),
            "marginal_roi_up": roi_up["marginal_roi"].to_numpy(),
            "marginal_roi_down": roi_down["marginal_roi"].to_numpy(),
        }
    )
    return PenaltyAllowance(el_table, roi_table, float(chosen), [float(g) for g in admissible])


def choice_allowance(choice) -> PenaltyAllowance | None:
    """:func:`penalty_allowance` of a ``loss.lambda_media: cv`` selection
    (:class:`~nam_mmm.training.selection.MediaShrinkageChoice`): the tables of its inner models under the chosen and
    the other admissible penalties. None without a selection or without inner fits (a window too short to split)."""
    if choice is None or choice.chosen not in choice.inner_fits:
        return None
    from nam_mmm.evaluation.attribution import elasticity_table, roi_table

    estimates = {
        lam: (elasticity_table(model, dm, "all"), roi_table(model, dm, "all"))
        for lam, (model, dm) in choice.inner_fits.items()
        if lam in choice.admissible
    }
    return penalty_allowance(estimates, choice.admissible, choice.chosen)


@dataclass
class IntervalTables:
    """What :func:`bootstrap_intervals` returns: the run folder's ``elasticities.csv`` and ``roi.csv`` with the
    bootstrap interval (``interval`` = :func:`interval_name`), the replicates (``bootstrap.csv``) and the
    per-period band of predicted GMV (``prediction_band.csv``)."""

    elasticities: pd.DataFrame
    roi: pd.DataFrame
    replicates: pd.DataFrame
    prediction_band: pd.DataFrame
    info: dict
    boot: BootstrapResult | None = None
    members_el: pd.DataFrame | None = None  # walk-forward: each fold model's values (member = fold)
    members_roi: pd.DataFrame | None = None
    curve_band: pd.DataFrame | None = None  # curve_band.csv


def _wide(long: pd.DataFrame, keys: list[str], value: str, index: pd.MultiIndex | pd.Index) -> np.ndarray:
    """(B, K) replicate matrix aligned to ``index`` (NaN where a replicate lacks a key)."""
    w = long.pivot_table(index="resample", columns=keys, values=value, aggfunc="first")
    return w.reindex(columns=index).to_numpy(dtype=float)


def member_tables(result) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each fold model's elasticities and ROI on every period (walk-forward; ``member`` = fold index): the values
    behind the fold-ensemble means, evaluated as :func:`~nam_mmm.evaluation.run_result.summarize_run` does."""
    from nam_mmm.evaluation.attribution import elasticity_table, roi_table

    full = result.folds[-1].datamodule
    el, roi = [], []
    for k, f in enumerate(result.folds):
        m = f.model.eval()
        el.append(elasticity_table(m, full, "all")[["level", "unit", "feature", "elasticity"]].assign(member=k))
        r = roi_table(m, full, "all")
        roi.append(r[["channel", *[c for c in ROI_VALUES if c in r]]].assign(member=k))
    return pd.concat(el, ignore_index=True), pd.concat(roi, ignore_index=True)


def interval_tables(
    elasticities: pd.DataFrame,
    roi: pd.DataFrame,
    boot_elasticities: pd.DataFrame,
    boot_roi: pd.DataFrame,
    level: float,
    members_el: pd.DataFrame | None = None,
    members_roi: pd.DataFrame | None = None,
    penalty: PenaltyAllowance | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The point tables (``elasticities.csv`` / ``roi.csv`` schema) with the bootstrap interval in ``lower`` /
    ``upper``, ``roi_lower`` … and ``interval``, and ``resamples`` (refits behind each interval).

    Holdout (no members): :func:`bias_aware_interval` with θ_ref = the point. Walk-forward (``members_*``: each
    fold model's values, the last one being the window the refits resample): θ_ref = the last fold model, with the
    fold spread, around the ensemble mean. ``penalty``: the media penalty's allowance (:func:`penalty_allowance`;
    keys it lacks get none)."""
    walk = members_el is not None
    name = interval_name(level, walk)
    el, roi = elasticities.copy(), roi.copy()
    e_index = pd.MultiIndex.from_frame(el[ELASTICITY_KEYS])
    e_reps = _wide(boot_elasticities, ELASTICITY_KEYS, "elasticity", e_index)
    point = el["elasticity"].to_numpy(float)
    up = down = None
    if penalty is not None:
        pe = penalty.elasticities.set_index(ELASTICITY_KEYS).reindex(e_index).fillna(0.0)
        up, down = pe["up"].to_numpy(float), pe["down"].to_numpy(float)
    if walk:
        m = members_el.pivot_table(index="member", columns=ELASTICITY_KEYS, values="elasticity", aggfunc="first").reindex(columns=e_index).to_numpy(float)
        lo, hi = bias_aware_interval(point, m[-1], e_reps, np.std(m, axis=0, ddof=1), level, up, down)
    else:
        lo, hi = bias_aware_interval(point, point, e_reps, None, level, up, down)
    el["lower"], el["upper"], el["interval"] = lo, hi, name
    el["resamples"] = np.sum(np.isfinite(e_reps), axis=0)
    r_index = pd.Index(roi["channel"])
    for c in ("roi", "marginal_roi"):
        reps = _wide(boot_roi, ["channel"], c, r_index)
        point = roi[c].to_numpy(float)
        up = down = None
        if penalty is not None:
            pr = penalty.roi.set_index("channel").reindex(r_index).fillna(0.0)
            up, down = pr[f"{c}_up"].to_numpy(float), pr[f"{c}_down"].to_numpy(float)
        if walk:
            m = members_roi.pivot_table(index="member", columns="channel", values=c, aggfunc="first").reindex(columns=r_index).to_numpy(float)
            lo, hi = bias_aware_interval(point, m[-1], reps, np.std(m, axis=0, ddof=1), level, up, down)
        else:
            lo, hi = bias_aware_interval(point, point, reps, None, level, up, down)
        roi[f"{c}_lower"], roi[f"{c}_upper"] = lo, hi
    roi["interval"] = name
    roi["resamples"] = int(boot_roi["resample"].nunique()) if len(boot_roi) else 0
    return el, roi


def bootstrap_intervals(
    result,
    table: FeatureTable,
    make_module: Callable,
    make_trainer: Callable,
    config: IntervalConfig,
    seed: int = 0,
    batch_size: int | None = None,
    penalty: PenaltyAllowance | None = None,
) -> IntervalTables:
    """The run's attribution tables with block-bootstrap intervals (see the module docstring).

    ``result`` is the run's :class:`~nam_mmm.evaluation.run_result.RunResult` (its point estimates stay as they
    are); ``table`` the run's feature table; ``make_module`` / ``make_trainer`` the run's builders without
    loggers; ``seed`` / ``batch_size`` the run's. Holdout: refits on resamples of the model's training periods,
    scored on its training rows. Walk-forward: refits on resamples of the last fold's window, scored on every
    period, combined with the fold spread. ``penalty``: the media penalty's allowance when ``loss.lambda_media: cv``
    chose it (:func:`penalty_allowance`)."""
    walk = result.mode == "walk_forward"
    last = result.folds[-1]
    split = "all" if walk else "train"
    boot = block_bootstrap(table, last.fold, last.datamodule, split, make_module, make_trainer, config, seed, batch_size)
    members_el, members_roi = member_tables(result) if walk else (None, None)
    el, roi = interval_tables(result.elasticities, result.roi, boot.elasticities, boot.roi, config.level, members_el, members_roi, penalty)
    band = prediction_band(boot.periods, config.level)
    cband = curve_band(result.curves, boot.curves, config.level) if boot.curves is not None else None
    info = {
        "interval": interval_name(config.level, walk),
        "level": config.level,
        "resamples": boot.resamples,
        "requested": config.resamples,
        "block_length": boot.block_length,
        "window": f"{boot.window[0].date()} … {boot.window[-1].date()} ({len(boot.window)})",
        "scored_on": "every period" if walk else "the model's training rows",
        "seconds": round(boot.seconds, 1),
        "processes": int(config.processes),
        "failures": boot.failures,
        "penalty_allowance": None if penalty is None else penalty.describe(),
    }
    tables = IntervalTables(el, roi, boot.replicate_table(), band, info, curve_band=cband)
    tables.boot, tables.members_el, tables.members_roi = boot, members_el, members_roi
    return tables


def prediction_band(periods: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per period: quantiles of the refits' predicted GMV (rupees, summed over SKUs) — the model's own band."""
    a = (1 - level) / 2
    g = periods.groupby("period", sort=True)["predicted"]
    return pd.DataFrame({"lower": g.quantile(a), "median": g.median(), "upper": g.quantile(1 - a), "resamples": g.size()}).reset_index()


def curve_band(point: pd.DataFrame, curves: pd.DataFrame, level: float) -> pd.DataFrame:
    """``curve_band.csv``: per feature, brand and grid point ``x`` of ``point`` (the run's ``curves.csv``), the
    quantiles of the refits' curves there (each refit's curve interpolated onto the point's ``x``; NaN outside a
    refit's own grid)."""
    a = (1 - level) / 2
    out = []
    for (feature, brand), g in point.groupby(["feature", "brand"], sort=False):
        x = g["x"].to_numpy(float)
        c = curves[(curves["feature"] == feature) & (curves["brand"] == brand)]
        reps = []
        for _, r in c.groupby("resample"):
            r = r.sort_values("x")
            rx, ry = r["x"].to_numpy(float), r["effect_log_gmv"].to_numpy(float)
            reps.append(np.where((x >= rx[0]) & (x <= rx[-1]), np.interp(x, rx, ry), np.nan))
        reps = np.array(reps) if reps else np.full((1, len(x)), np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = np.nanquantile(reps, a, axis=0), np.nanquantile(reps, 1 - a, axis=0)
        out.append(pd.DataFrame({"feature": feature, "brand": brand, "x": x, "lower": lo, "upper": hi, "resamples": np.isfinite(reps).sum(0)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["feature", "brand", "x", "lower", "upper", "resamples"])
