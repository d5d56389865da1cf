"""The HTTP API of a served model (FastAPI): ``python scripts/serve.py model_dir=...``; endpoints in docs/api.md.

``create_app(ServeConfig(...))`` builds the app around one :class:`~nam_mmm.serving.artifact.ModelArtifact`
(an artifact, a run folder or a model store, whose ``current.json`` is watched: a retraining that switches it is
picked up without a restart), an optional challenger for an A/B test, and a
:class:`~nam_mmm.serving.monitor.Monitor`. The request schema is built from the model's own inputs, so
``/docs`` shows every field with its constraint, and a bad request is answered by the client error it is:

* 422: a missing, unknown or mistyped field, NaN or infinity, a negative spend, a non-positive price, a period
  off the model's calendar ... (the field and row are named);
* 404: a SKU or brand the model was not trained on; 413: a body over ``max_body_bytes`` or more than
  ``max_rows`` rows. An unexpected server fault is a 500 with a one-line message; no response carries a traceback.
"""

# no ``from __future__ import annotations``: FastAPI reads the request models built in create_app from the signatures

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from nam_mmm.errors import ConfigError, DataError, NamMMMError
from nam_mmm.serving.ab_test import ABConfig, ABTest
from nam_mmm.serving.artifact import ModelArtifact, resolve_model_dir
from nam_mmm.serving.monitor import Monitor, MonitorConfig

log = logging.getLogger(__name__)

Finite = Annotated[float, Field(allow_inf_nan=False)]


@dataclass
class ServeConfig:
    """``conf/serve.yaml``."""

    model_dir: str  # artifact folder, run folder or model store
    challenger_dir: str | None = None  # a second model: A/B test (arm B)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 5_000_000  # larger request bodies get 413
    max_rows: int = 10_000  # more rows in one request get 413
    interval: float = 0.9  # level of the prediction interval
    range_factor: float | None = None  # out-of-range flag factor (null: the model's own)
    reload_check_s: float = 1.0  # how often a model store's current.json is looked at (seconds)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    ab: ABConfig = field(default_factory=ABConfig)

    def __post_init__(self) -> None:
        if isinstance(self.monitor, dict):
            self.monitor = MonitorConfig(**self.monitor)
        if isinstance(self.ab, dict):
            self.ab = ABConfig(**self.ab)
        if not 0 < float(self.interval) < 1:
            raise ConfigError(f"interval must be in (0, 1), got {self.interval!r}")
        if int(self.max_body_bytes) < 1 or int(self.max_rows) < 1:
            raise ConfigError("max_body_bytes and max_rows must be >= 1")


# ---------------------------------------------------------------------------------------------------- errors
class ClientError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _error(status: int, message: str, field: str | None = None, errors: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if field is not None:
        body["field"] = field
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(status_code=status, content=body)


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` (declared or streamed) is answered 413 unread."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = False
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False
        messages, size = [], 0
        if not too_large:
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    messages.append(message)
                    break
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    too_large = True
                    break
                messages.append(message)
                more = message.get("more_body", False)
        if too_large:
            response = _error(413, f"request body larger than the {self.max_bytes} bytes this server accepts (max_body_bytes); split the rows into smaller requests")
            return await response(scope, receive, send)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


# ---------------------------------------------------------------------------------------------------- schema
def _row_model(artifact: ModelArtifact) -> type[BaseModel]:
    spec = artifact.predictor.spec
    fields: dict[str, Any] = {
        "period": (date, Field(description=f"first day of the period on the model's {spec.freq} calendar (from {spec.periods[0]}; later periods continue it)")),
        "sku": (str, Field(description="a SKU the model was trained on (GET /model lists them)")),
        "brand": (str | None, Field(default=None, description="optional: must be the SKU's brand")),
    }
    for col in spec.inputs:
        if col.startswith("spend_"):
            fields[col] = (Annotated[float, Field(ge=0, allow_inf_nan=False, description="media spend, rupees (>= 0)")], ...)
        elif col in spec.log_features:
            fields[col] = (Annotated[float, Field(gt=0, allow_inf_nan=False, description="raw units, > 0 (the model takes its log)")], ...)
        else:
            fields[col] = (Finite, Field(description="raw units (finite)"))
    return create_model("Row", __config__=ConfigDict(extra="forbid"), **fields)


class ActualRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: date
    sku: str
    gmv: Annotated[float, Field(gt=0, allow_inf_nan=False, description="observed GMV, rupees (> 0)")]


class ActualsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: Annotated[list[ActualRow], Field(min_length=1)]


# ---------------------------------------------------------------------------------------------------- state
class Served:
    """The served model(s), the monitor and the A/B test; reloads a model store's current model when it changes."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.source = Path(config.model_dir)
        self.pointer = self.source / "current.json" if (self.source / "current.json").exists() else None
        self._pointer_mtime = self.pointer.stat().st_mtime_ns if self.pointer else None
        self._last_check = time.monotonic()
        self._lock = threading.Lock()
        self.reload_error: str | None = None
        self.model = ModelArtifact.load(resolve_model_dir(self.source), range_factor=config.range_factor)
        self.challenger = ModelArtifact.load(resolve_model_dir(config.challenger_dir), range_factor=config.range_factor) if config.challenger_dir else None
        if self.challenger is not None and list(self.challenger.predictor.spec.inputs) != list(self.model.predictor.spec.inputs):
            raise ConfigError(f"challenger {config.challenger_dir} takes other inputs than the served model; an A/B test needs the same request schema")
        self.monitor = Monitor(self.model.reference, list(self.model.predictor.spec.inputs), config.monitor, self.model.version)
        self.ab = ABTest(config.ab, {"A": self.model.version, "B": self.challenger.version}) if self.challenger else None
        if self.ab is not None:
            self.monitor.on_match = self.ab.record
        self.started = time.time()
        self.requests = 0

    def maybe_reload(self) -> None:
        """Serve the store's new current model once ``current.json`` changed (same inputs only)."""
        if self.pointer is None or time.monotonic() - self._last_check < float(self.config.reload_check_s):
            return
        with self._lock:
            self._last_check = time.monotonic()
            try:
                mtime = self.pointer.stat().st_mtime_ns
            except OSError:
                return
            if mtime == self._pointer_mtime:
                return
            self._pointer_mtime = mtime
            try:
                new = ModelArtifact.load(resolve_model_dir(self.source), range_factor=self.config.range_factor)
            except NamMMMError as err:
                self.reload_error = f"kept {self.model.version}: {err}"
                log.error("model reload failed: %s", err)
                return
            if new.version == self.model.version:
                return
            if list(new.predictor.spec.inputs) != list(self.model.predictor.spec.inputs):
                self.reload_error = f"kept {self.model.version}: the store's model {new.version} takes other inputs; restart the server to serve it"
                log.error(self.reload_error)
                return
            log.info("serving %s (was %s)", new.version, self.model.version)
            self.model, self.reload_error = new, None
            self.monitor.set_reference(new.reference, list(new.predictor.spec.inputs))
            self.monitor.model_version = new.version
            if self.ab is not None:
                self.ab.versions["A"] = new.version

    def pick(self, request_id: str | None) -> tuple[ModelArtifact, str | None]:
        if self.ab is None:
            return self.model, None
        arm = self.ab.assign(request_id)
        return (self.challenger if arm == "B" else self.model), arm


def _frame(rows: list[BaseModel], artifact: ModelArtifact, max_rows: int) -> pd.DataFrame:
    if len(rows) > max_rows:
        raise ClientError(413, f"{len(rows)} rows in one request, more than the {max_rows} this server accepts (max_rows); split the request")
    df = pd.DataFrame([r.model_dump() for r in rows])
    df["period"] = [d.isoformat() for d in df["period"]]
    spec = artifact.predictor.spec
    unknown = ~df["sku"].isin(spec.sku_brand.keys())
    if unknown.any():
        rows_txt = ", ".join(str(i) for i in np.flatnonzero(unknown.to_numpy())[:8])
        raise ClientError(404, f"unknown SKU(s) {', '.join(sorted(set(df.loc[unknown, 'sku'])))} (rows {rows_txt}); the model knows {len(spec.skus)} SKUs, GET /model lists them", "sku")
    if "brand" in df and df["brand"].notna().any():
        brands = set(spec.sku_brand.values())
        bad = df["brand"].notna() & ~df["brand"].isin(brands)
        if bad.any():
            rows_txt = ", ".join(str(i) for i in np.flatnonzero(bad.to_numpy())[:8])
            raise ClientError(404, f"unknown brand(s) {', '.join(sorted(set(df.loc[bad, 'brand'])))} (rows {rows_txt}); the model's brands: {', '.join(sorted(brands))}", "brand")
        given = df["brand"].notna()
        wrong = given & (df["brand"] != df["sku"].map(spec.sku_brand))
        if wrong.any():
            i = int(np.flatnonzero(wrong.to_numpy())[0])
            raise ClientError(422, f"rows[{i}].brand: {df['brand'].iloc[i]} is not the brand of SKU {df['sku'].iloc[i]} ({spec.sku_brand[df['sku'].iloc[i]]})", "brand")
    return df.drop(columns=["brand"])


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


# ---------------------------------------------------------------------------------------------------- app
def _request_models(served: Served, config: ServeConfig) -> tuple[type[BaseModel], type[BaseModel]]:
    """The bodies of ``/predict`` and ``/elasticity``, built from the served model's inputs."""
    Row = _row_model(served.model)
    PredictRequest = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(Annotated[list[Row], Field(min_length=1, description="one row per SKU and period, raw features in original units")], ...),
        request_id=(str | None, Field(default=None, description="optional key of the request (the A/B split uses it)")),
        interval=(Annotated[float, Field(gt=0, lt=1)] | None, Field(default=None, description=f"interval level (default {config.interval})")),
    )
    ElasticityRequest = create_model("ElasticityRequest", __config__=ConfigDict(extra="forbid"), rows=(Annotated[list[Row], Field(min_length=1)], ...))
    return PredictRequest, ElasticityRequest


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answered as the one-line JSON error it is (422, 404, 413, or a 500 without a traceback)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"field": "body" if e.get("type") == "json_invalid" else _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return _error(422, f"{first['field']}: {first['message']}{more}", first["field"], errors)

    @app.exception_handler(ClientError)
    async def _client(request: Request, exc: ClientError):
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(NamMMMError)
    async def _data(request: Request, exc: NamMMMError):  # the predictor's one-line refusal of a request
        if isinstance(exc, DataError) and exc.column and exc.rows:  # its rows count from 1; JSON arrays from 0
            first = int(exc.rows[0]) - 1
            more = f" (rows {', '.join(str(int(r) - 1) for r in exc.rows[:8])}{' …' if len(exc.rows) > 8 else ''})" if len(exc.rows) > 1 else ""
            return _error(422, f"rows[{first}].{exc.column}: {exc.problem}{more}", exc.column)
        return _error(422, str(exc).removeprefix("request: "), getattr(exc, "column", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")


def _predict(served: Served, config: ServeConfig, body) -> dict:
    """``POST /predict``: GMV, its interval and the contributions of each row, recorded by the monitor."""
    artifact, arm = served.pick(body.request_id)
    df = _frame(body.rows, artifact, config.max_rows)
    level = float(body.interval or config.interval)
    ex = artifact.predictor.explain(df)
    pred = ex["prediction"]
    gmv = pred["gmv"].to_numpy(dtype=float)
    lower, upper = artifact.interval(gmv, level)
    contrib = ex["contributions"].astype(float).round(8).to_dict("records")
    media = ex["media_inr"].astype(float).to_dict("records")
    base = ex["baseline"].to_numpy(dtype=float)
    sd = pred["log_gmv_sd"].to_numpy(dtype=float)
    flags = pred["out_of_range"].to_list()
    brand = df["sku"].map(artifact.predictor.spec.sku_brand).to_list()
    rows = [
        {
            "period": df["period"].iat[i], "sku": df["sku"].iat[i], "brand": brand[i],
            "gmv": float(gmv[i]), "lower": _num(lower[i]), "upper": _num(upper[i]), "log_gmv_sd": float(sd[i]),
            "baseline_log_gmv": float(base[i]), "contributions": contrib[i], "media_contributions_inr": media[i], "out_of_range": flags[i],
        }
        for i in range(len(df))
    ]
    alerts = served.monitor.record_predictions(df, gmv, artifact.version, arm, body.request_id)
    return {
        "model": artifact.version, "arm": arm,
        "interval": {"level": level, "method": artifact.metadata.get("interval", {}).get("method")},
        "rows": rows, "alerts": alerts,
    }


def _elasticity(served: Served, config: ServeConfig, body) -> dict:
    """``POST /elasticity``: every feature's elasticity per row and their mean."""
    artifact = served.model
    df = _frame(body.rows, artifact, config.max_rows)
    el = artifact.predictor.elasticities(df).astype(float)
    return {
        "model": artifact.version,
        "rows": [{"period": df["period"].iat[i], "sku": df["sku"].iat[i], "elasticities": r} for i, r in enumerate(el.to_dict("records"))],
        "mean": {k: float(v) for k, v in el.mean().items()},
    }


def _actuals(served: Served, body: ActualsRequest) -> dict:
    """``POST /actuals``: observed GMV of SKUs the served model (or the challenger) knows, to the monitor."""
    df = pd.DataFrame([r.model_dump() for r in body.rows])
    df["period"] = [d.isoformat() for d in df["period"]]
    unknown = ~df["sku"].isin(served.model.predictor.spec.sku_brand.keys())
    if served.challenger is not None:
        unknown &= ~df["sku"].isin(served.challenger.predictor.spec.sku_brand.keys())
    if unknown.any():
        raise ClientError(404, f"unknown SKU(s) {', '.join(sorted(set(df.loc[unknown, 'sku'])))}", "sku")
    return served.monitor.record_actuals(df)


def _health(served: Served) -> dict:
    """``GET /health``: liveness and the model's health checks ("degraded" when one fails or a reload failed)."""
    checks = served.model.health
    ok = all(c.get("ok") is not False for c in checks) and served.reload_error is None
    return {
        "status": "ok" if ok else "degraded",
        "model": served.model.version,
        "challenger": served.challenger.version if served.challenger else None,
        "checks": checks,
        "reload_error": served.reload_error,
        "active_alerts": len(served.monitor.active),
        "uptime_s": round(time.time() - served.started, 3),
        "requests": served.requests,
        "pid": os.getpid(),
    }


def _model_info(served: Served, config: ServeConfig) -> dict:
    """``GET /model``: ``model.json`` with the interval summarized and where and how the model is served."""
    meta = {k: v for k, v in served.model.metadata.items() if k != "interval"}
    residuals = served.model.metadata.get("interval", {}).get("residuals", [])
    meta["interval"] = {"method": served.model.metadata.get("interval", {}).get("method"), "residuals": len(residuals), "default_level": config.interval}
    meta["served_from"] = str(served.model.path)
    meta["self_check"] = served.model.self_check
    meta["challenger"] = None if served.challenger is None else {"version": served.challenger.version, "path": str(served.challenger.path)}
    meta["limits"] = {"max_body_bytes": int(config.max_body_bytes), "max_rows": int(config.max_rows)}
    return meta


def _add_routes(app: FastAPI, served: Served, config: ServeConfig) -> None:
    """The endpoints (docs/api.md). The handlers carry no docstring: FastAPI would put it in the OpenAPI schema."""
    PredictRequest, ElasticityRequest = _request_models(served, config)

    @app.post("/predict", summary="GMV, per-feature contributions and an interval for rows of raw features")
    def predict(body: PredictRequest) -> dict:
        return _predict(served, config, body)

    @app.post("/elasticity", summary="d log GMV / d log x of every feature, per row and on average")
    def elasticity(body: ElasticityRequest) -> dict:
        return _elasticity(served, config, body)

    @app.post("/actuals", summary="observed GMV of served rows: online MAPE (and the A/B test's errors)")
    def actuals(body: ActualsRequest) -> dict:
        return _actuals(served, body)

    @app.get("/health", summary="liveness, the model's health checks")
    def health() -> dict:
        return _health(served)

    @app.get("/model", summary="the served model's metadata (model.json)")
    def model() -> dict:
        return _model_info(served, config)

    @app.get("/monitor", summary="drift tests, online MAPE and alerts")
    def monitor() -> dict:
        served.monitor.check()
        return served.monitor.report()

    @app.get("/ab", summary="the A/B test: requests, errors and Welch's t-test per arm")
    def ab() -> dict:
        if served.ab is None:
            raise ClientError(404, "no A/B test: start the server with challenger_dir=<second model>")
        return served.ab.report()


def create_app(config: ServeConfig) -> FastAPI:
    served = Served(config)
    app = FastAPI(
        title="nam-mmm model API",
        version=served.model.metadata.get("package_version", ""),
        description="GMV predictions, contributions and elasticities of a trained HR-NAM, its monitor and A/B test. See docs/api.md.",
    )
    app.state.served = served
    app.add_middleware(BodyLimit, max_bytes=int(config.max_body_bytes))
    _add_error_handlers(app)

    @app.middleware("http")
    async def _count(request: Request, call_next):
        served.requests += 1
        served.maybe_reload()
        return await call_next(request)

    _add_routes(app, served, config)
    return app


def config_from(cfg) -> ServeConfig:
    """A :class:`ServeConfig` from a Hydra/OmegaConf node or a dict (``conf/serve.yaml``)."""
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    known = set(ServeConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known - {"hydra"})
    if unknown:
        raise ConfigError(f"serve config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return ServeConfig(**{k: v for k, v in data.items() if k in known})


