"""A small Hydra sweeper on Optuna >= 4: ``python train.py -m hparams_search=nam_optuna``.

Hydra's own ``hydra-optuna-sweeper`` still pins ``optuna<3``, whose sqlite storage breaks under the
SQLAlchemy 2 that MLflow needs, so the project carries this one (Hydra discovers it in the ``hydra_plugins``
namespace package). What it does:

* the search space is written in Hydra's override grammar (``interval``, ``tag(log, …)``, ``choice``,
  ``range``), in ``hydra.sweeper.params`` or on the command line; plain values are fixed for every trial;
* the study lives in an RDB storage (sqlite under ``experiments/`` by default, a PostgreSQL URL to share one
  study between machines); running the same command again continues it (``n_trials`` more trials);
* each batch of ``n_jobs`` trials goes through the configured Hydra launcher (basic: one after another;
  joblib: in parallel processes); the task's return value is the objective;
* a trial whose config cannot be composed, whose run raises (a config that cannot build, a diverged
  loss) or whose objective is not finite is recorded as FAIL with the reason in its ``fail_reason``
  attribute, and the sweep goes on — within a failure budget: once ``min_trials_for_budget`` trials of this
  invocation have finished, more than ``max_failure_share`` of them failing with the same reason (the same
  one-line ``fail_reason``, e.g. one code bug) stops the sweep with ``error: sweep stopped: …`` naming the
  reason and the count, and exit code 2, instead of spending every trial on it and exiting 0;
* with a ``pruner``, a walk-forward trial reports each fold's test metric and stops early when the pruner
  judges it worse than earlier trials at the same fold (state PRUNED);
* ``optimization_results.yaml`` in the sweep folder holds the best trial and a count of trials by state.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def distribution(override: Override):
    """The Optuna distribution of one sweep override (``None`` for a fixed value)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not override.is_sweep_override():
        return None
    if override.is_choice_sweep() or override.is_range_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_interval_sweep():
        value = override.value()
        assert isinstance(value, IntervalSweep)
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: only choice, range and interval sweeps can be searched")


def _job_error(ret: JobReturn) -> Exception | None:
    """The exception a job raised, or ``None`` when it completed.

    Hydra's public ``JobReturn.return_value`` re-raises a failed job's exception (the launcher caught it), so
    that is how it is read here rather than through the private ``_return_value``. The property first writes
    "Error executing job with overrides ..." to stderr; that line is muted, because the sweeper logs its own
    one-line reason per trial, and a pruned trial is no error.
    """
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            ret.return_value  # noqa: B018  evaluated for the exception it re-raises
    except Exception as err:  # noqa: BLE001  whatever the task raised (Hydra's run_job catches Exception)
        return err
    return None


def _sqlite_parent(storage: str | None) -> None:
    """Create the folder of a sqlite storage file (Optuna does not)."""
    if storage and storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


class NamOptunaSweeper(Sweeper):
    """Optuna study over Hydra overrides.

    Args:
        study_name: name of the study in the storage (the same name continues the study).
        storage: RDB URL (``sqlite:///path.db``, ``postgresql://user:pass@host/db``) or ``None`` (in memory).
        direction: ``maximize`` or ``minimize`` (the task's return value).
        n_trials: trials run by this invocation.
        n_jobs: trials launched per batch (parallel with a parallel launcher such as joblib).
        sampler: an Optuna sampler (Hydra instantiates ``_target_: optuna.samplers.TPESampler`` configs), or ``None``.
        params: ``{override key: override value}``; sweeps (interval, choice, range) form the search space.
        enqueue_trials: parameter dicts tried first (e.g. the default config as a baseline), once per study.
        pruner: an Optuna pruner (Hydra instantiates its config) or ``None``. With a pruner and an RDB storage,
            each trial gets its trial id in ``NAM_MMM_OPTUNA_TRIAL_ID`` (``hydra.job.env_set``); the run reports
            every walk-forward fold to it and stops when pruned (the trial is then PRUNED).
        max_failure_share: the failure budget: the sweep stops (exit code 2) when more than this share of
            the trials finished by this invocation failed with the same reason; ``None`` or 1.0: never stops.
        min_trials_for_budget: finished trials before the budget applies (one early failure is not a pattern).
    """

    def __init__(
        self,
        study_name: str,
        storage: str | None,
        direction: str,
        n_trials: int,
        n_jobs: int = 1,
        sampler: Any = None,
        params: Mapping[str, Any] | None = None,
        enqueue_trials: Sequence[Mapping[str, Any]] | None = None,
        pruner: Any = None,
        max_failure_share: float | None = 0.5,
        min_trials_for_budget: int = 3,
    ) -> None:
        if max_failure_share is not None and not 0.0 <= float(max_failure_share) <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_share must be in [0, 1] (or null), got {max_failure_share}")
        if int(min_trials_for_budget) < 1:
            raise ValueError(f"hydra.sweeper.min_trials_for_budget must be at least 1, got {min_trials_for_budget}")
        self.study_name = study_name
        self.storage = storage
        self.direction = direction
        self.n_trials = int(n_trials)
        self.n_jobs = max(int(n_jobs), 1)
        self.sampler = sampler
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.enqueue = [{str(k): v for k, v in t.items()} for t in enqueue_trials or []]
        self.pruner = pruner
        self.max_failure_share = None if max_failure_share is None else float(max_failure_share)
        self.min_trials_for_budget = int(min_trials_for_budget)
        self.rdb = None  # the RDBStorage of the study (None in memory): its public API maps trial numbers to ids
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context, task_function=task_function)

    # ------------------------------------------------------------------ search space
    def _space(self, arguments: list[str]) -> tuple[dict, list[str]]:
        """Distributions by key and the fixed overrides (command line wins over config)."""
        parser = OverridesParser.create()
        from_config = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()])
        from_cli = parser.parse_overrides(arguments)
        by_key: dict[str, Override] = {o.get_key_element(): o for o in from_config}
        by_key.update({o.get_key_element(): o for o in from_cli})
        space, fixed = {}, []
        for key, override in by_key.items():
            dist = distribution(override)
            if dist is None:
                fixed.append(override.input_line or f"{key}={override.get_value_element_as_str()}")
            else:
                space[key] = dist
        return space, fixed

    def _study(self):
        import optuna
        from hydra.utils import instantiate

        _sqlite_parent(self.storage)
        sampler = self.sampler  # Hydra instantiates the nested sampler config with the sweeper
        if isinstance(sampler, dict) or OmegaConf.is_config(sampler):
            sampler = instantiate(sampler)
        for attempt in range(3):
            try:
                # an RDBStorage object, not the URL, so that _trial_id can use its public API (the same
                # storage create_study would build from the URL)
                self.rdb = optuna.storages.RDBStorage(self.storage) if self.storage else None
                study = optuna.create_study(
                    study_name=self.study_name, storage=self.rdb, sampler=sampler, pruner=self._pruner(), direction=self.direction, load_if_exists=True
                )
                break
            except Exception as err:  # noqa: BLE001  two workers creating a new storage's tables at the same moment
                if attempt == 2 or "already exists" not in str(err):
                    raise
                time.sleep(1.0 + attempt)
        for params in self.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
        return study

    def _trial_id(self, trial) -> int:
        """The storage id of a trial, which ``optuna.trial.Trial(study, trial_id)`` takes (the run rebuilds its
        trial from it). ``optuna.Trial`` only exposes its ``number``; the storage maps number to id publicly."""
        assert self.rdb is not None
        study_id = self.rdb.get_study_id_from_name(self.study_name)
        return self.rdb.get_trial_id_from_study_id_trial_number(study_id, trial.number)

    def _over_budget(self, outcomes: list[str | None]) -> str | None:
        """The one-line error when the failure budget is spent, else ``None``.

        ``outcomes``: one entry per trial finished by this invocation, its ``fail_reason`` or ``None``
        (completed or pruned)."""
        if self.max_failure_share is None or len(outcomes) < self.min_trials_for_budget:
            return None
        counts = Counter(reason for reason in outcomes if reason is not None)
        if not counts:
            return None
        reason, count = counts.most_common(1)[0]
        if count <= self.max_failure_share * len(outcomes):
            return None
        return (
            f"sweep stopped: {count} of {len(outcomes)} finished trials failed with the same reason "
            f"(more than max_failure_share={self.max_failure_share:g}): {reason}"
        )

    def _pruner(self):
        from hydra.utils import instantiate

        if isinstance(self.pruner, dict) or OmegaConf.is_config(self.pruner):
            return instantiate(self.pruner)
        return self.pruner

    # ------------------------------------------------------------------ the sweep
    def sweep(self, arguments: list[str]) -> list:
        import optuna

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        space, fixed = self._space(arguments)
        study = self._study()
        done_before = sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)  # enqueued ones are still to run
        log.info(
            "study %r (%s, %s): %d earlier trial(s); running %d more over %s",
            self.study_name, self.storage or "in memory", self.direction, done_before, self.n_trials, ", ".join(space) or "nothing",
        )
        results = []
        outcomes: list[str | None] = []  # per finished trial of this invocation: its fail reason, or None
        remaining = self.n_trials
        while remaining > 0:
            batch = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            remaining -= len(batch)
            runnable, overrides = [], []
            for trial in batch:
                trial_overrides = [*fixed, *(f"{k}={v}" for k, v in trial.params.items())]
                if self.pruner is not None and self.storage:  # the run reports its folds to this trial
                    trial_overrides.append(f"++hydra.job.env_set.NAM_MMM_OPTUNA_TRIAL_ID={self._trial_id(trial)}")
                try:  # a config that cannot be composed never reaches the launcher
                    self.hydra_context.config_loader.load_sweep_config(self.config, trial_overrides)
                except Exception as err:  # noqa: BLE001  any composition error fails this trial only
                    outcomes.append(self._fail(study, trial, f"config: {err}"))
                    continue
                runnable.append(trial)
                overrides.append(trial_overrides)
            if runnable:
                results += self._run_batch(study, runnable, overrides, outcomes)
            stop = self._over_budget(outcomes)
            if stop is not None:  # the project's one-line user error: "error: ..." on stderr, exit code 2
                self._write_results(study, done_before, stopped=stop)
                print(f"error: {stop}", file=sys.stderr)
                raise SystemExit(2)
        self._write_results(study, done_before)
        return results

    def _run_batch(self, study, runnable: list, overrides: list[list[str]], outcomes: list[str | None]) -> list:
        """Launch one batch of trials and tell the study each outcome (appended to ``outcomes``); returns the
        job returns of the completed trials."""
        import optuna

        results = []
        try:
            returns = self.launcher.launch(overrides, initial_job_idx=runnable[0].number)
        except BaseException:  # Ctrl-C or a launcher crash: close the batch's trials so the study stays clean
            for trial in runnable:
                self._fail(study, trial, "interrupted")
            raise
        for trial, ret in zip(runnable, returns, strict=True):
            out_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
            if out_dir:
                trial.set_user_attr("run_dir", str(out_dir))
            err = _job_error(ret)
            if isinstance(err, optuna.TrialPruned):
                trial.set_user_attr("prune_reason", str(err))
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                log.info("trial %d pruned: %s", trial.number, err)
                outcomes.append(None)
                continue
            if err is not None:
                outcomes.append(self._fail(study, trial, f"{type(err).__name__}: {err}"))
                continue
            value = ret.return_value
            try:
                value = float(value)
            except (TypeError, ValueError):
                outcomes.append(self._fail(study, trial, f"objective is {value!r}, not a number"))
                continue
            if not math.isfinite(value):
                outcomes.append(self._fail(study, trial, f"objective is {value}"))
                continue
            study.tell(trial, value)
            log.info("trial %d: %.6g with %s", trial.number, value, trial.params)
            outcomes.append(None)
            results.append(ret)
        return results

    @staticmethod
    def _fail(study, trial, reason: str) -> str:
        """Record the trial as FAIL with the first line of ``reason``; returns that line."""
        import optuna

        lines = str(reason).strip().splitlines()
        reason = lines[0] if lines else "(no message)"
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, reason)
        return reason

    def _write_results(self, study, done_before: int, stopped: str | None = None) -> None:
        import optuna

        states = {s.name: 0 for s in optuna.trial.TrialState}
        for t in study.trials:
            states[t.state.name] += 1
        summary: dict[str, Any] = {
            "study_name": self.study_name,
            "storage": self.storage,
            "direction": self.direction,
            "trials_before": done_before,
            "trials_total": len(study.trials),
            "trials_by_state": {k: v for k, v in states.items() if v},
        }
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if complete:
            best = study.best_trial
            summary.update({"best_trial": best.number, "best_value": best.value, "best_params": dict(best.params)})
            summary["best_run_dir"] = best.user_attrs.get("run_dir")
            log.info("best trial %d: %s %.6g with %s", best.number, self.direction, best.value, best.params)
        failed = {t.number: t.user_attrs.get("fail_reason", "") for t in study.trials if t.state == optuna.trial.TrialState.FAIL}
        if failed:
            summary["failed_trials"] = failed
        if stopped is not None:
            summary["stopped"] = stopped
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(summary), sweep_dir / "optimization_results.yaml")
