"""The edge between Hydra configs and the package: configs become objects here, plain arguments flow inward.

Used by ``train.py`` and ``scripts/*.py`` only; nothing deeper in the package imports this module.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nam_mmm.config import register_configs
from nam_mmm.errors import NamMMMError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _repo_root() -> str:
    """Project root (the folder holding ``conf/``) for paths in configs; the working directory if installed elsewhere."""
    return str(REPO_ROOT if (REPO_ROOT / "conf").is_dir() else Path.cwd())


if not OmegaConf.has_resolver("repo_root"):
    OmegaConf.register_new_resolver("repo_root", _repo_root)
register_configs()  # the typed schemas the config groups compose against (nam_mmm.config)


def one_line_errors(fn: Callable) -> Callable:
    """Turn a :class:`NamMMMError` raised by ``fn`` into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            from omegaconf.errors import MissingMandatoryValue

            user_error: BaseException | None = err
            while user_error is not None and not isinstance(user_error, (NamMMMError, MissingMandatoryValue)):
                user_error = user_error.__cause__ or user_error.__context__  # instantiate wraps the cause
            if user_error is None:
                raise
            if isinstance(user_error, MissingMandatoryValue):
                key = getattr(user_error, "full_key", "") or "a setting"
                user_error = NamMMMError(f"config: {key} is required; give it on the command line, e.g. {key}=...")
            if _multirun():
                raise user_error from None  # the sweeper records the job as failed, with this one line, and goes on
            print(f"error: {user_error}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def _multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (a grid or an Optuna sweep)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


MOVED_TARGETS: dict[str, str] = {
    "nam_mmm.data.synthetic.load_synthetic": "nam_mmm.data.sources.synthetic.load_synthetic",
    "nam_mmm.data.dtmart.load_dtmart": "nam_mmm.data.sources.dtmart.load_dtmart",
    "nam_mmm.data.panel_csv.load_panel_csv": "nam_mmm.data.sources.panel_csv.load_panel_csv",
    "nam_mmm.data.folds.WalkForwardSplitter": "nam_mmm.data.folds.splitters.WalkForwardSplitter",
    "nam_mmm.data.folds.HoldoutSplitter": "nam_mmm.data.folds.splitters.HoldoutSplitter",
}
"""Old ``_target_`` -> its current home: the ``config.yaml`` of a run folder saved before ``nam_mmm.data`` was split
into subpackages names the old paths, and reports, planners and retraining rebuild its data and folds from it."""


def current_target(node: DictConfig) -> DictConfig:
    """An instantiable config node whose ``_target_`` is an old path of :data:`MOVED_TARGETS`: a copy naming the
    current path (interpolations still resolve against the node's root); any other node as it is."""
    target = node.get("_target_")
    if target not in MOVED_TARGETS:
        return node
    node = node.copy()
    node._target_ = MOVED_TARGETS[target]
    return node


def load_table(data_cfg: DictConfig):
    """Instantiate the data source, validate and clean it, and build the feature table."""
    from hydra.utils import instantiate

    from nam_mmm.data.features.table import FeatureConfig, build_features
    from nam_mmm.data.quality.cleaning import CleaningConfig, prepare_panel

    panel = instantiate(current_target(data_cfg.source), _convert_="all")
    cleaning = CleaningConfig(**OmegaConf.to_container(data_cfg.cleaning, resolve=True))
    prepare_panel(panel, cleaning)  # validate and clean the channels as the file has them
    if data_cfg.get("channel_groups"):
        panel = panel.with_channel_groups(OmegaConf.to_container(data_cfg.channel_groups, resolve=True))
    features = FeatureConfig(**OmegaConf.to_container(data_cfg.features, resolve=True))
    return build_features(panel, features)


def make_splitter(validation_cfg: DictConfig):
    from hydra.utils import instantiate

    return instantiate(current_target(validation_cfg.splitter))


def quiet_lightning() -> None:
    """Keep the console for results: Lightning's banner lines and two known-harmless warnings off."""
    import logging
    import warnings

    import lightning  # noqa: F401  importing Lightning sets its loggers to INFO: import first, then quiet them

    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*ReduceLROnPlateau conditioned on metric.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*weights_only.*")


def flatten(cfg: DictConfig, prefix: str = "") -> dict[str, object]:
    """Resolved config as flat ``a.b.c -> value`` pairs (MLflow params)."""
    out: dict[str, object] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        else:
            out[key] = node if isinstance(node, (int, float, str, bool)) or node is None else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), prefix)
    return out


def _loggers(cfg: DictConfig) -> list:
    """The run's loggers; in a multirun, MLflow runs nest under the sweep's parent run (see :mod:`nam_mmm.tracking`)."""
    from hydra.utils import instantiate

    if not cfg.get("logger"):
        return []
    loggers = []
    for conf in (c for c in cfg.logger.values() if c is not None):
        tags = {}
        if conf.get("tracking_uri") and _multirun():
            from hydra.core.hydra_config import HydraConfig

            from nam_mmm.tracking import sweep_parent_run_id

            hc = HydraConfig.get()
            parent = sweep_parent_run_id(conf.tracking_uri, conf.experiment_name, hc.sweep.dir)
            tags = {"nam_mmm.job_num": str(hc.job.num), "nam_mmm.overrides": " ".join(hc.overrides.task)[:5000]}
            if parent:
                tags["mlflow.parentRunId"] = parent
        loggers.append(instantiate(conf, **({"tags": tags} if tags else {})))
    return loggers


def _fold_loggers(cfg: DictConfig, parents: list, fold_index: int, n_folds: int) -> list:
    """One fold's loggers: the run's own loggers for a single fold; otherwise a fresh logger per fold, MLflow
    ones as nested runs under the parent run."""
    if n_folds == 1 or not parents:
        return parents
    from hydra.utils import instantiate

    children = []
    for parent, conf in zip(parents, [c for c in cfg.logger.values() if c is not None], strict=True):
        run_id = getattr(parent, "run_id", None)
        if run_id is None:  # e.g. a CSV logger: a new version folder per fold
            children.append(instantiate(conf))
            continue
        name = f"{getattr(parent, '_run_name', None) or 'run'}-fold{fold_index}"
        children.append(instantiate(conf, run_name=name, tags={"mlflow.parentRunId": run_id, "fold": str(fold_index)}))
    return children


def _pruning_hook(cfg: DictConfig, n_folds: int):
    """In an Optuna trial with a pruner (``hydra.sweeper.pruner``): report each fold's test metric named by the
    objective (``walk_forward.pooled.r2`` → the fold's R²) to the trial, and stop the run when the pruner says so."""
    import os

    trial_id = os.environ.get("NAM_MMM_OPTUNA_TRIAL_ID")
    if n_folds < 2 or trial_id is None or not _multirun():
        return None
    import optuna
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    sweeper = HydraConfig.get().sweeper  # the sweeper sets the trial id only with a pruner and an RDB storage
    if sweeper.get("pruner") is None:
        return None
    study = optuna.load_study(study_name=sweeper.study_name, storage=sweeper.storage, pruner=instantiate(sweeper.pruner))
    trial = optuna.trial.Trial(study, int(trial_id))
    metric = str(cfg.get("objective", "")).rsplit(".", 1)[-1]

    def report(run) -> None:
        value = run.evaluation.metrics.get("test", {}).get(metric)
        if value is None or not math.isfinite(value):
            return
        trial.report(float(value), step=run.fold.index)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after fold {run.fold.index}: fold {metric} {value:.4g} is worse than the pruner allows")

    return report


def _identifiability(table, folds, cfg: DictConfig):
    """The spend evidence of the periods the last model is trained on (all periods before its test periods)."""
    from nam_mmm.evaluation.identifiability import IdentifiabilityThresholds, check_identifiability

    last = folds[-1]
    periods = last.train.union(last.val)
    spend = table.panel.spend_by_period().loc[periods]
    thresholds = IdentifiabilityThresholds(**OmegaConf.to_container(cfg.get("identifiability") or {}, resolve=True))
    return check_identifiability(spend.to_numpy(dtype=float), list(table.channels), thresholds)


def train(cfg: DictConfig) -> float:
    """Train per the composed config, write the run files into the Hydra run folder, return the objective.

    The tracking runs are opened first, so a run that fails (bad data, a config that cannot build, a
    diverged loss) is still in MLflow, marked FAILED with the reason in its ``failure`` tag."""
    quiet_lightning()
    parents = _loggers(cfg)
    for lg in parents:
        lg.log_hyperparams(flatten(cfg))
    opened = list(parents)  # every run opened, fold runs included
    try:
        return _train(cfg, parents, opened)
    except BaseException as err:
        from optuna import TrialPruned

        reason = f"{type(err).__name__}: {err}".splitlines()[0][:5000]
        pruned = isinstance(err, TrialPruned)  # stopped early by an Optuna pruner: KILLED, not FAILED
        for lg in opened:
            if getattr(lg, "run_id", None) and hasattr(lg, "experiment"):
                if lg.experiment.get_run(lg.run_id).info.status != "RUNNING":
                    continue  # a fold that finished before the failure stays FINISHED
                lg.experiment.set_tag(lg.run_id, "pruned" if pruned else "failure", reason)
            lg.finalize("KILLED" if pruned else "failed")
        raise


def _builders(cfg: DictConfig, table, n_folds: int, parents: list, opened: list):
    """``make_module(dm)`` and ``make_trainer(fold, module)`` for :func:`run_folds`: the typed settings of the
    model, constraints, loss, strategy and optimizer, and the trainer with its callbacks and fold loggers."""
    from hydra.utils import instantiate

    from nam_mmm.config import LossConfig, ModelSettings
    from nam_mmm.training.module import NAMModule
    from nam_mmm.training.runner import model_config
    from nam_mmm.training.shrinkage import ridge_shrinkage

    settings: ModelSettings = OmegaConf.to_object(cfg.model)  # typed at compose time (nam_mmm.config)
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    loss: LossConfig = OmegaConf.to_object(cfg.loss)
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)

    def make_module(dm, lambda_media: float | None = None) -> NAMModule:
        fold_loss = vars(loss) if lambda_media is None else {**vars(loss), "lambda_media": float(lambda_media)}
        if loss.lambda_function == "auto":  # the fold's own cross-validated ridge penalty (training periods only)
            fold_loss = {**fold_loss, "lambda_function": ridge_shrinkage(dm)}
        return NAMModule(model_config(dm, settings, constraints), loss=fold_loss, strategy=strategy, max_epochs=int(cfg.trainer.max_epochs), **optimizer)

    def make_trainer(fold, module):
        callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
        loggers = _fold_loggers(cfg, parents, fold.index, n_folds)
        opened.extend(lg for lg in loggers if lg not in opened)
        warm = module.strategy.warm_epochs  # a hybrid's coordinate and block epochs
        min_epochs = max(int(cfg.trainer.get("min_epochs") or 0), warm + 1 if warm else 0)  # the last phase runs at least one epoch
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, min_epochs=min_epochs)

    return make_module, make_trainer


def _select_media_shrinkage(cfg: DictConfig, table, folds):
    """``loss.lambda_media: cv``: choose the penalty inside the first fold's training window
    (:mod:`nam_mmm.training.selection`) and write the chosen number into ``cfg.loss.lambda_media``, so every fold
    and every bootstrap refit trains with it. None when the penalty is a number."""
    if cfg.loss.get("lambda_media") != "cv":
        return None
    from nam_mmm.training.selection import select_media_shrinkage

    make_module, make_trainer = _builders(cfg, table, len(folds), [], [])  # inner fits: no loggers
    grid, tolerance = list(cfg.loss.lambda_media_grid), float(cfg.loss.lambda_media_tolerance)
    choice = select_media_shrinkage(table, folds[0], grid, tolerance, make_module, make_trainer, seed=int(cfg.seed), batch_size=cfg.batch_size)
    cfg.loss.lambda_media = choice.chosen
    errors = ", ".join(f"{g:g}: {'—' if e is None else f'{e:.4g}'}" for g, e in zip(choice.grid, choice.inner_mse_log, strict=True))
    print(f"loss.lambda_media=cv chose {choice.chosen:g} (inner forecast {choice.inner_test} after {choice.inner_train}; log MSE {errors}; {choice.reason})")
    return choice


def _bootstrap(cfg: DictConfig, table, folds, result, media_choice=None):
    """Block-bootstrap refits (``intervals.enabled``): their intervals replace the result's attribution tables.
    ``media_choice``: the ``loss.lambda_media: cv`` selection, whose admissible penalties widen the intervals."""
    if not (cfg.get("intervals") and cfg.intervals.get("enabled")):
        return None
    from nam_mmm.evaluation.intervals import IntervalConfig, bootstrap_intervals, choice_allowance
    from nam_mmm.evaluation.run_result import CONTRIBUTION_COLUMNS

    make_module, make_trainer = _builders(cfg, table, len(folds), [], [])  # refits: no loggers
    settings = IntervalConfig(**OmegaConf.to_container(cfg.intervals, resolve=True))
    penalty = choice_allowance(media_choice)
    intervals = bootstrap_intervals(result, table, make_module, make_trainer, settings, seed=int(cfg.seed), batch_size=cfg.batch_size, penalty=penalty)
    result.elasticities, result.roi = intervals.elasticities, intervals.roi
    result.contributions = intervals.roi[CONTRIBUTION_COLUMNS]
    return intervals


def _analysis_and_report(cfg: DictConfig, folder, result, intervals) -> None:
    """Decomposition, diagnostics, per-unit metrics and health checks; with ``report`` the plots, HTML and PDF."""
    from nam_mmm.reporting.report import write_report
    from nam_mmm.reporting.run_files import write_analysis

    health = OmegaConf.to_container(cfg.health, resolve=True) if cfg.get("health") else None
    write_analysis(folder.root, result, intervals, health)
    if cfg.get("report"):
        write_report(folder.root, health=health)


def _train(cfg: DictConfig, parents: list, opened: list) -> float:
    """compose → data → folds → fit → :class:`RunResult` → run folder → MLflow and console."""
    import time

    import torch
    from hydra.core.hydra_config import HydraConfig

    from nam_mmm.data.quality.validation import check_min_periods
    from nam_mmm.evaluation.run_result import summarize_run
    from nam_mmm.evaluation.walk_forward import AcceptanceCriteria
    from nam_mmm.models.ensemble import FoldEnsemble
    from nam_mmm.reporting.console import run_summary
    from nam_mmm.run_folder import RunFolder
    from nam_mmm.serving.predictor import Predictor
    from nam_mmm.tracking import log_run
    from nam_mmm.training.walk_forward import run_folds

    started = time.perf_counter()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    folder = RunFolder(HydraConfig.get().runtime.output_dir)
    table = load_table(cfg.data)
    panel = table.panel
    print(panel.report.console_summary(max_lines=5))
    folds = make_splitter(cfg.validation).split(panel.periods)
    check_min_periods(len(panel.periods), str(cfg.validation.name), folds, source=panel.source)
    ident = _identifiability(table, folds, cfg)
    folder.write_inputs(OmegaConf.to_yaml(cfg, resolve=True), panel.report.to_dict(), ident.to_dict())
    if not ident.ok:
        print(f"warning: {ident.message()}")

    media_choice = _select_media_shrinkage(cfg, table, folds)
    make_module, make_trainer = _builders(cfg, table, len(folds), parents, opened)
    fold_results = run_folds(
        table, folds, make_module, make_trainer, lambda f: folder.checkpoint_path(f.index, len(folds)),
        seed=int(cfg.seed), batch_size=cfg.batch_size, on_fold_end=_pruning_hook(cfg, len(folds)),
    )
    if not fold_results:  # a DDP worker process: rank 0 evaluates and reports
        return float("nan")
    acceptance_cfg = cfg.validation.get("acceptance")
    criteria = AcceptanceCriteria(**OmegaConf.to_container(acceptance_cfg, resolve=True)) if acceptance_cfg else AcceptanceCriteria()
    result = summarize_run(fold_results, panel.truth, criteria)
    if media_choice is not None:
        result.metrics["lambda_media_selection"] = media_choice.to_dict()
    intervals = _bootstrap(cfg, table, folds, result, media_choice)
    predictor = Predictor.from_datamodule([m.eval() for m in result.members], fold_results[-1].datamodule)  # the served model
    result.metrics["identifiability_ok"] = ident.ok
    result.metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
    ensemble = FoldEnsemble(result.members).to_dict() if result.mode == "walk_forward" else None
    folder.write_result(result, predictor, ensemble)
    _analysis_and_report(cfg, folder, result, intervals)
    last = table.frame[table.frame["period"] == panel.periods[-1]].head(5)  # real rows as the pyfunc's input example
    log_run(parents, folder, result.metrics, predictor, lambda: predictor.request_rows(last), bool(cfg.get("log_pyfunc")))
    ident_note = "" if ident.ok else ident.message().split(" — ", 1)[-1]
    print(run_summary(result, folder.root, ident_note, panel.report.warning_note() if panel.report.has_warnings else ""))
    return result.objective(str(cfg.get("objective", "test.r2")))
