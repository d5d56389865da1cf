"""The model artifact: one self-describing folder per trained model, the thing every server loads.

It wraps the run's :class:`~nam_mmm.serving.predictor.Predictor` (``predictor.pt``, the same file the run folder
and the MLflow pyfunc hold: weights, fitted scalers, feature spec, SKU → brand mapping, spend history for
carry-over) and adds what a server, a monitor and a retrainer need to know about it without the training data:

============================  ==========================================================================
``model.json``                metadata: format, package/torch versions, training date, data period, features
                              and roles, brands and SKUs, metrics, acceptance verdict, health checks, the
                              prediction interval's residuals and the SHA-256 of every other file
``predictor.pt``              the served model (unchanged :class:`Predictor` format)
``config.yaml``               the run's resolved config (retraining starts from it)
``metrics.json``              the run's summary metrics
``acceptance.json``           walk-forward acceptance verdict (walk-forward runs only)
``identifiability.json``      the spend identifiability evidence
``validation.json``           the data validation findings
``curves.csv``                the shape functions (retraining reports how far they moved)
``elasticities.csv``          the run's elasticities
``reference.csv``             the training rows as requests (raw inputs) with their GMV: the training
                              distribution the drift tests compare served inputs with
``check.json``                self-check: a few training rows and the predictions made at export, replayed
                              at every load (bit-identical, or the load fails)
============================  ==========================================================================

:func:`export_artifact` builds it from a run folder (into a temporary sibling, renamed into place: a crash
leaves no half artifact); :meth:`ModelArtifact.load` verifies it (format, checksums, self-check) and refuses a
corrupted or incompatible one with a one-line :class:`ArtifactError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.features.model_inputs import brand_order
from nam_mmm.errors import NamMMMError

FORMAT = 1  # artifact layout version this package reads and writes
METADATA = "model.json"
PREDICTOR = "predictor.pt"
REFERENCE = "reference.csv"
CHECK = "check.json"
COPIED = ["config.yaml", "metrics.json", "acceptance.json", "identifiability.json", "validation.json", "curves.csv", "elasticities.csv"]
CHECK_ROWS = 8  # training rows replayed by the self-check
SELF_CHECK_RTOL = 1e-5  # a load whose self-check differs by more than this (relative) is refused


class ArtifactError(NamMMMError):
    """A model artifact that cannot be used: missing, corrupted, or from an incompatible version."""


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("nam-mmm")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        import nam_mmm

        return nam_mmm.__version__


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to ``path`` through a temporary file and :func:`os.replace` (readers see old or new, never half)."""
    from nam_mmm.run_folder import jsonable

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(jsonable(obj), indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


# ---------------------------------------------------------------------------------------------------- export
def _reference_rows(predictor, run_dir: Path, table=None) -> pd.DataFrame:
    """The training panel's rows as requests (period, brand, sku, raw inputs) with their GMV and fit weight."""
    if table is None:
        from omegaconf import OmegaConf

        from nam_mmm.entry import load_table

        try:
            table = load_table(OmegaConf.load(run_dir / "config.yaml").data)
        except NamMMMError as err:
            raise ArtifactError(f"{run_dir}: the run's data is needed once to export its artifact (training distribution for the drift tests): {err}") from None
    frame = table.frame
    rows = predictor.request_rows(frame)
    rows.insert(1, "brand", frame["brand"].astype(str).to_numpy())
    rows["gmv"] = frame["gmv"].to_numpy(dtype=float)
    rows["fit_weight"] = frame["fit_weight"].to_numpy(dtype=float) if "fit_weight" in frame else 1.0
    return rows


def _residuals(run_dir: Path) -> list[float]:
    """Out-of-sample log residuals ``log(actual) - log(predicted)`` of the run's scored test rows."""
    path = run_dir / "oos_predictions.csv"
    if not path.exists():
        return []
    oos = pd.read_csv(path)
    oos = oos[(oos.get("fit_weight", 1) > 0) & (oos["actual"] > 0) & (oos["predicted"] > 0)]
    return [float(v) for v in np.log(oos["actual"].to_numpy(float)) - np.log(oos["predicted"].to_numpy(float))]


def _health(run_dir: Path, metrics: dict) -> list[dict]:
    checks = []
    acc_path = run_dir / "acceptance.json"
    if acc_path.exists():
        acc = json.loads(acc_path.read_text())
        failed = [c["reason"] or c["criterion"] for c in acc.get("criteria", []) if not c.get("passed")]
        checks.append({"name": "acceptance", "ok": bool(acc.get("passed")), "detail": "walk-forward acceptance passed" if acc.get("passed") else "; ".join(failed)})
    else:
        checks.append({"name": "acceptance", "ok": None, "detail": "not evaluated (holdout run: train with validation=walk_forward for a verdict)"})
    ident = metrics.get("identifiability_ok")
    detail = "the spend can tell the channels apart" if ident else "see identifiability.json: some channels cannot be told apart"
    checks.append({"name": "identifiability", "ok": None if ident is None else bool(ident), "detail": detail})
    val_path = run_dir / "validation.json"
    if val_path.exists():
        findings = json.loads(val_path.read_text()).get("findings", [])
        warnings = [f for f in findings if f.get("severity") in ("warning", "error")]
        checks.append({"name": "data_validation", "ok": not warnings, "detail": f"{len(warnings)} warning(s) in validation.json" if warnings else "no warnings"})
    test = metrics.get("test") or {}
    finite = all(np.isfinite(float(test.get(k, np.nan))) for k in ("r2", "mape"))
    checks.append({"name": "test_metrics", "ok": finite, "detail": f"test R² {test.get('r2', float('nan')):.4g}, MAPE {test.get('mape', float('nan')):.4g} %" if finite else "test metrics missing or not finite"})
    return checks


def export_artifact(run_dir: str | Path, dest: str | Path, table=None) -> Path:
    """Write the artifact of the run folder ``run_dir`` at ``dest`` (which must not exist); returns ``dest``.

    ``table`` is the run's feature table when the caller has it (else it is rebuilt from ``config.yaml``). The
    folder is written as a temporary sibling and renamed into place, so ``dest`` is either complete or absent.
    """
    from nam_mmm.serving.predictor import Predictor

    run_dir, dest = Path(run_dir), Path(dest)
    for name in (PREDICTOR, "config.yaml", "metrics.json"):
        if not (run_dir / name).exists():
            raise ArtifactError(f"{run_dir}: not a finished run folder ({name} is missing)")
    if dest.exists():
        raise ArtifactError(f"{dest}: already exists; an artifact is never overwritten (choose a new folder)")
    predictor = Predictor.load(run_dir / PREDICTOR)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        shutil.copy2(run_dir / PREDICTOR, tmp / PREDICTOR)
        for name in COPIED:
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, tmp / name)
        reference = _reference_rows(predictor, run_dir, table)
        reference.to_csv(tmp / REFERENCE, index=False)
        check_rows = reference[reference["period"] == reference["period"].max()].head(CHECK_ROWS)
        request = check_rows[["period", "sku", *predictor.spec.inputs]]
        expected = Predictor.load(tmp / PREDICTOR).predict(request)
        (tmp / CHECK).write_text(json.dumps({"request": request.to_dict("list"), "gmv": [float(v) for v in expected["gmv"]], "log_gmv_sd": [float(v) for v in expected["log_gmv_sd"]]}) + "\n")
        metadata = _metadata(run_dir, predictor, metrics, reference)
        metadata["files"] = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        metadata["version"] = f"{datetime.fromisoformat(metadata['trained_at'].replace('Z', '+00:00')).strftime('%Y%m%dT%H%M%S')}-{metadata['files'][PREDICTOR][:8]}"
        write_json_atomic(tmp / METADATA, metadata)
        _fsync_dir(tmp)
        os.replace(tmp, dest)  # atomic: dest appears complete
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _metadata(run_dir: Path, predictor, metrics: dict, reference: pd.DataFrame) -> dict:
    import torch
    from omegaconf import OmegaConf

    spec = predictor.spec
    cfg = OmegaConf.load(run_dir / "config.yaml")
    first = predictor.model.members[0]
    slots = {s.name: s for s in first.slots}
    features = []
    for name in spec.features:
        s = slots[name]
        features.append({"name": name, "role": s.role, "input": name in spec.inputs, "log": name in spec.log_features, "direction": s.direction, "elasticity": s.elasticity})
    for c in spec.channels:
        features.append({"name": f"spend_{c}", "role": "media", "input": True, "log": False, "direction": slots[c].direction, "elasticity": True})
    acc_path = run_dir / "acceptance.json"
    acceptance = json.loads(acc_path.read_text()) if acc_path.exists() else None
    mode = "walk_forward" if acceptance is not None else "holdout"
    walk = metrics.get("walk_forward") or {}
    return {
        "format": FORMAT,
        "package": "nam-mmm",
        "package_version": package_version(),
        "torch_version": torch.__version__,
        "exported_at": _iso(time.time()),
        "trained_at": _iso((run_dir / PREDICTOR).stat().st_mtime),
        "run_dir": str(run_dir.resolve()),
        "mode": mode,
        "members": len(predictor.model.members),
        "data": {
            "name": str(cfg.data.get("name", "")),
            "source": str(cfg.data.source.get("path", cfg.data.source.get("_target_", ""))),
            "first_period": spec.periods[0],
            "last_period": spec.periods[-1],
            "n_periods": len(spec.periods),
            "freq": spec.freq,
            "rows": int(len(reference)),
        },
        "features": features,
        "inputs": list(spec.inputs),
        "channels": list(spec.channels),
        "national_media": bool(spec.national),
        "brands": brand_order(spec.sku_brand),
        "skus": list(spec.skus),
        "sku_brand": dict(spec.sku_brand),
        "metrics": {"test": metrics.get("test"), "walk_forward_pooled": walk.get("pooled"), "fold_r2_std": walk.get("fold_r2_std"), "wall_seconds": metrics.get("wall_seconds")},
        "acceptance": None if acceptance is None else {"passed": bool(acceptance.get("passed")), "criteria": acceptance.get("criteria", [])},
        "health": _health(run_dir, metrics),
        "interval": {"method": "empirical quantiles of the run's out-of-sample log residuals log(actual/predicted)", "residuals": _residuals(run_dir)},
    }


# ---------------------------------------------------------------------------------------------------- load
@dataclass
class ModelArtifact:
    """A verified artifact: its folder, metadata and predictor (see :meth:`load`)."""

    path: Path
    metadata: dict
    predictor: object  # nam_mmm.serving.predictor.Predictor
    self_check: dict = field(default_factory=dict)
    _reference: pd.DataFrame | None = None

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @classmethod
    def load(cls, path: str | Path, range_factor: float | None = None) -> ModelArtifact:
        """Load and verify the artifact at ``path``; :class:`ArtifactError` with the reason otherwise.

        Checks, in order: ``model.json`` readable; its format is one this package reads; every file listed is
        present with its SHA-256 (a changed or truncated file is refused); the predictor builds; the self-check
        rows predict what they predicted at export (bit-identical, or within ``SELF_CHECK_RTOL`` on a different
        platform, reported in :attr:`self_check`).
        """
        from nam_mmm.serving.predictor import Predictor

        path = Path(path)
        meta_path = path / METADATA
        if not meta_path.exists():
            raise ArtifactError(f"{path}: not a model artifact ({METADATA} is missing; export a run folder with export_artifact or serve the run folder itself)")
        try:
            metadata = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ArtifactError(f"{meta_path}: corrupted ({type(err).__name__}: {str(err).splitlines()[0]})") from None
        if not isinstance(metadata, dict) or "format" not in metadata or "files" not in metadata:
            raise ArtifactError(f"{meta_path}: corrupted (no 'format' or 'files' entry)")
        fmt, written_by = metadata.get("format"), metadata.get("package_version", "?")
        if fmt != FORMAT:
            newer = isinstance(fmt, int) and fmt > FORMAT
            raise ArtifactError(
                f"{path}: artifact format {fmt!r} written by nam-mmm {written_by} cannot be read by nam-mmm {package_version()} (reads format {FORMAT}); "
                + ("upgrade nam-mmm to the version that wrote it" if newer else f"re-export the run folder with nam-mmm {package_version()}")
            )
        for name, digest in metadata["files"].items():
            f = path / name
            if not f.exists():
                raise ArtifactError(f"{path}: corrupted ({name} is missing)")
            if sha256(f) != digest:
                raise ArtifactError(f"{path}: corrupted ({name} differs from the checksum in {METADATA}: the file was changed or truncated)")
        try:
            predictor = Predictor.load(path / PREDICTOR, range_factor=range_factor)
        except NamMMMError:
            raise
        except Exception as err:  # a state dict or spec this code does not know: an incompatible version
            raise ArtifactError(f"{path}: {PREDICTOR} written by nam-mmm {written_by} cannot be loaded by nam-mmm {package_version()} ({type(err).__name__}: {str(err).splitlines()[0][:300]})") from None
        artifact = cls(path, metadata, predictor)
        artifact.self_check = artifact._run_self_check()
        return artifact

    def _run_self_check(self) -> dict:
        check = json.loads((self.path / CHECK).read_text())
        got = self.predictor.predict(pd.DataFrame(check["request"]))["gmv"].to_numpy(dtype=float)
        expected = np.asarray(check["gmv"], dtype=float)
        identical = bool(np.array_equal(got, expected))
        rel = float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-30))) if len(got) else 0.0
        if not identical and not rel <= SELF_CHECK_RTOL:
            raise ArtifactError(f"{self.path}: self-check failed: {len(got)} training rows predict up to {rel:.3g} (relative) away from the predictions recorded at export; the model does not reproduce here")
        return {"name": "self_check", "ok": True, "rows": len(got), "bit_identical": identical, "max_rel_diff": rel}

    # ------------------------------------------------------------------ what a server needs
    @property
    def health(self) -> list[dict]:
        return [*self.metadata.get("health", []), {"name": "self_check", "ok": self.self_check.get("ok"), "detail": ("bit-identical to the export" if self.self_check.get("bit_identical") else f"within {self.self_check.get('max_rel_diff', 0):.2g} relative of the export")}]

    @property
    def reference(self) -> pd.DataFrame:
        """The training rows (raw inputs, GMV): the training distribution of every input."""
        if self._reference is None:
            self._reference = pd.read_csv(self.path / REFERENCE, dtype={"sku": str, "brand": str, "period": str})
        return self._reference

    def interval(self, gmv: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of ``level`` (e.g. 0.9) around ``gmv``: the run's out-of-sample log residual
        quantiles ``(1 − level) / 2`` and ``(1 + level) / 2``; ``(nan, nan)`` when the run scored no test rows."""
        res = np.asarray(self.metadata.get("interval", {}).get("residuals", []), dtype=float)
        gmv = np.asarray(gmv, dtype=float)
        if not len(res):
            return np.full_like(gmv, np.nan), np.full_like(gmv, np.nan)
        lo, hi = np.quantile(res, [(1 - level) / 2, (1 + level) / 2])
        return gmv * np.exp(lo), gmv * np.exp(hi)


def resolve_model_dir(path: str | Path, table=None) -> Path:
    """The artifact folder to serve for ``path``: a model store (``current.json``: its current artifact), an
    artifact (``model.json``), or a run folder (``predictor.pt``, no ``model.json``: its artifact under
    ``<run>/artifact/``, exported there on first use)."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such folder")
    if (path / "current.json").exists():
        from nam_mmm.serving.store import ModelStore

        return ModelStore(path).current_path()
    if (path / METADATA).exists():
        return path
    if (path / PREDICTOR).exists():
        dest = path / "artifact"
        if not (dest / METADATA).exists():
            export_artifact(path, dest, table)
        return dest
    raise ArtifactError(f"{path}: neither a model artifact ({METADATA}), a model store (current.json) nor a run folder ({PREDICTOR})")
