"""The model artifact and the HTTP API (issue 13): bit-identical reloads, clear refusals of corrupted or
incompatible artifacts, every client error with its status and the field named, and a real uvicorn server.

One tiny walk-forward run (2 folds, 4 SKUs × 40 weeks) is trained in-process for the module and exported as
an artifact; the API tests drive it through FastAPI's TestClient.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import train_in_process

WALK_FORWARD = ["validation=walk_forward", "data.walk_forward.initial_train=24", "data.walk_forward.test_size=6", "data.walk_forward.step=6", "data.walk_forward.val_size=4"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("api") / "run"
    train_in_process(out, WALK_FORWARD)
    return out


@pytest.fixture(scope="module")
def artifact_dir(run_dir) -> Path:
    from nam_mmm.serving.artifact import export_artifact

    return export_artifact(run_dir, run_dir.parent / "artifact")


@pytest.fixture(scope="module")
def artifact(artifact_dir):
    from nam_mmm.serving.artifact import ModelArtifact

    return ModelArtifact.load(artifact_dir)


@pytest.fixture(scope="module")
def client(artifact_dir):
    from fastapi.testclient import TestClient

    from nam_mmm.serving.api import ServeConfig, create_app

    app = create_app(ServeConfig(model_dir=str(artifact_dir), max_body_bytes=200_000, max_rows=50, monitor={"min_rows": 4, "check_every": 4}))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def rows(artifact) -> list[dict]:
    """The last training period's rows as a JSON request (raw features)."""
    ref = artifact.reference
    last = ref[ref["period"] == ref["period"].max()]
    return last.drop(columns=["gmv", "fit_weight"]).to_dict("records")


def copy_artifact(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def rewrite_checksums(folder: Path) -> None:
    from nam_mmm.serving.artifact import METADATA, sha256

    meta = json.loads((folder / METADATA).read_text())
    meta["files"] = {name: sha256(folder / name) for name in meta["files"]}
    (folder / METADATA).write_text(json.dumps(meta))


# ---------------------------------------------------------------------------------------------------- artifact
def test_the_artifact_describes_the_model(artifact, run_dir) -> None:
    meta = artifact.metadata
    assert meta["format"] == 1 and meta["package_version"] and meta["torch_version"]
    assert meta["mode"] == "walk_forward" and meta["members"] == 2
    assert meta["data"]["first_period"] == "2023-01-02" and meta["data"]["n_periods"] == 40 and meta["data"]["freq"] == "W-MON"
    assert meta["skus"] == ["brand_1_sku_1", "brand_1_sku_2", "brand_2_sku_1", "brand_2_sku_2"] and meta["sku_brand"]["brand_2_sku_1"] == "brand_2"
    roles = {f["name"]: f["role"] for f in meta["features"]}
    assert roles["price"] == "own_price" and roles["spend_tv"] == "media" and roles["time_index"] == "trend"
    assert meta["acceptance"]["passed"] == json.loads((run_dir / "acceptance.json").read_text())["passed"]
    assert {c["name"] for c in meta["health"]} >= {"acceptance", "identifiability", "data_validation", "test_metrics"}
    assert meta["metrics"]["test"]["r2"] == json.loads((run_dir / "metrics.json").read_text())["test"]["r2"]
    assert len(meta["interval"]["residuals"]) == meta["metrics"]["test"]["n"]
    assert set(meta["files"]) >= {"predictor.pt", "config.yaml", "reference.csv", "check.json", "curves.csv"}
    assert len(artifact.reference) == 160 and set(artifact.predictor.spec.inputs) <= set(artifact.reference.columns)


def test_save_load_predict_is_bit_identical_anywhere(artifact, artifact_dir, run_dir, tmp_path) -> None:
    from nam_mmm.serving.artifact import ModelArtifact
    from nam_mmm.serving.predictor import Predictor

    request = artifact.predictor.request_rows(artifact.reference)
    here = artifact.predictor.predict(request)
    moved = ModelArtifact.load(copy_artifact(artifact_dir, tmp_path / "elsewhere" / "model"))
    there = moved.predictor.predict(request)
    np.testing.assert_array_equal(there["gmv"].to_numpy(), here["gmv"].to_numpy())
    np.testing.assert_array_equal(there["log_gmv_sd"].to_numpy(), here["log_gmv_sd"].to_numpy())
    np.testing.assert_array_equal(Predictor.load(run_dir / "predictor.pt").predict(request)["gmv"].to_numpy(), here["gmv"].to_numpy())
    assert moved.self_check["bit_identical"] and moved.version == artifact.version


def test_an_artifact_is_never_overwritten(run_dir, artifact_dir) -> None:
    from nam_mmm.serving.artifact import ArtifactError, export_artifact

    before = (artifact_dir / "model.json").read_bytes()
    with pytest.raises(ArtifactError, match="already exists"):
        export_artifact(run_dir, artifact_dir)
    assert (artifact_dir / "model.json").read_bytes() == before


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "predictor.pt").write_bytes((d / "predictor.pt").read_bytes()[:-100]), "predictor.pt differs from the checksum"),
        (lambda d: (d / "reference.csv").unlink(), "reference.csv is missing"),
        (lambda d: (d / "model.json").write_text('{"format": 1, "files": {'), "model.json: corrupted (JSONDecodeError"),
        (lambda d: (d / "model.json").unlink(), "not a model artifact"),
    ],
)
def test_a_corrupted_artifact_is_refused_with_a_clear_reason(artifact_dir, tmp_path, damage, message) -> None:
    from nam_mmm.serving.artifact import ArtifactError, ModelArtifact

    folder = copy_artifact(artifact_dir, tmp_path / "model")
    damage(folder)
    with pytest.raises(ArtifactError) as err:
        ModelArtifact.load(folder)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_artifact_of_a_newer_format_is_refused_with_the_versions(artifact_dir, tmp_path) -> None:
    from nam_mmm.serving.artifact import ArtifactError, ModelArtifact

    folder = copy_artifact(artifact_dir, tmp_path / "model")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format": 2, "package_version": "9.0.0"}))
    with pytest.raises(ArtifactError) as err:
        ModelArtifact.load(folder)
    assert "artifact format 2 written by nam-mmm 9.0.0 cannot be read" in str(err.value) and "upgrade nam-mmm" in str(err.value)


def test_a_predictor_from_an_incompatible_version_is_a_clear_error_not_a_shape_error(artifact_dir, tmp_path) -> None:
    import torch

    from nam_mmm.serving.artifact import ArtifactError, ModelArtifact

    folder = copy_artifact(artifact_dir, tmp_path / "model")
    d = torch.load(folder / "predictor.pt", weights_only=False)
    state = d["ensemble"]["members"][0]["state"]
    key = next(k for k, v in state.items() if v.ndim == 3)
    state[key] = torch.zeros(*state[key].shape[:-1], state[key].shape[-1] + 1)  # a layer of another size
    torch.save(d, folder / "predictor.pt")
    rewrite_checksums(folder)
    with pytest.raises(ArtifactError) as err:
        ModelArtifact.load(folder)
    assert "predictor.pt written by nam-mmm" in str(err.value) and "cannot be loaded by nam-mmm" in str(err.value)


def test_a_model_that_does_not_reproduce_its_export_is_refused(artifact_dir, tmp_path) -> None:
    from nam_mmm.serving.artifact import ArtifactError, ModelArtifact

    folder = copy_artifact(artifact_dir, tmp_path / "model")
    check = json.loads((folder / "check.json").read_text())
    check["gmv"] = [v * 1.01 for v in check["gmv"]]
    (folder / "check.json").write_text(json.dumps(check))
    rewrite_checksums(folder)
    with pytest.raises(ArtifactError, match="self-check failed"):
        ModelArtifact.load(folder)


def test_a_run_folder_is_served_through_its_exported_artifact(run_dir, artifact) -> None:
    from nam_mmm.serving.artifact import resolve_model_dir

    path = resolve_model_dir(run_dir)
    assert path == run_dir / "artifact" and (path / "model.json").exists()
    assert resolve_model_dir(run_dir) == path  # exported once
    assert json.loads((path / "model.json").read_text())["files"]["predictor.pt"] == artifact.metadata["files"]["predictor.pt"]


# ---------------------------------------------------------------------------------------------------- API
def test_predict_returns_gmv_contributions_and_an_interval(client, artifact, rows) -> None:
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == artifact.version and body["interval"]["level"] == 0.9
    expected = artifact.predictor.predict(pd.DataFrame(rows))["gmv"].to_numpy()
    got = np.array([row["gmv"] for row in body["rows"]])
    np.testing.assert_array_equal(got, expected)  # the API serves the artifact's own numbers
    for row in body["rows"]:
        assert row["lower"] < row["gmv"] < row["upper"]
        total = row["baseline_log_gmv"] + sum(row["contributions"].values())
        assert total == pytest.approx(np.log(row["gmv"]), abs=1e-4)  # the contributions add up to log GMV
        assert set(row["contributions"]) == set(artifact.predictor.feature_names)
        assert set(row["media_contributions_inr"]) == set(artifact.predictor.spec.channels)
        assert all(v >= 0 for v in row["media_contributions_inr"].values())  # media never lowers GMV
    wider = client.post("/predict", json={"rows": rows, "interval": 0.99}).json()["rows"][0]
    assert wider["lower"] <= body["rows"][0]["lower"] and wider["upper"] >= body["rows"][0]["upper"]


def test_elasticity_per_row_and_on_average(client, rows) -> None:
    r = client.post("/elasticity", json={"rows": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["rows"]) == len(rows)
    assert body["mean"]["price"] < 0 < body["mean"]["cross_price"]  # the shape constraints hold through the API
    assert all(body["mean"][f"media_{c}"] >= 0 for c in ("tv", "digital", "sponsorship", "search", "social"))
    assert body["mean"]["price"] == pytest.approx(np.mean([row["elasticities"]["price"] for row in body["rows"]]))


def test_health_model_and_openapi_docs(client, artifact) -> None:
    health = client.get("/health").json()
    assert health["model"] == artifact.version and health["status"] in ("ok", "degraded")
    assert {c["name"] for c in health["checks"]} >= {"acceptance", "self_check"}
    meta = client.get("/model").json()
    assert meta["version"] == artifact.version and meta["skus"] == artifact.metadata["skus"] and meta["self_check"]["bit_identical"]
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/elasticity", "/actuals", "/health", "/model", "/monitor"} <= set(schema["paths"])
    row = schema["components"]["schemas"]["Row"]
    assert {"period", "sku", "price", "spend_tv"} <= set(row["required"]) and row["properties"]["spend_tv"]["minimum"] == 0


def _edit(rows: list[dict], i: int = 0, drop: str | None = None, **values) -> list[dict]:
    out = [dict(r) for r in rows]
    if drop:
        out[i].pop(drop)
    out[i].update(values)
    return out


@pytest.mark.parametrize(
    "make, status, field, text",
    [
        (lambda r: {"rows": _edit(r, 1, drop="price")}, 422, "rows[1].price", "Field required"),
        (lambda r: {"rows": _edit(r, 0, nps="high")}, 422, "rows[0].nps", "valid number"),
        (lambda r: {"rows": _edit(r, 0, period="next month")}, 422, "rows[0].period", "date"),
        (lambda r: {"rows": _edit(r, 2, spend_tv=-5.0)}, 422, "rows[2].spend_tv", "greater than or equal to 0"),
        (lambda r: {"rows": _edit(r, 0, price=0.0)}, 422, "rows[0].price", "greater than 0"),
        (lambda r: {"rows": _edit(r, 0, spend_tvv=1.0)}, 422, "rows[0].spend_tvv", "Extra inputs"),
        (lambda r: {"rows": []}, 422, "rows", "at least 1"),
        (lambda r: {"row": r}, 422, "rows", "Field required"),
        (lambda r: {"rows": _edit(r, 0, period="2023-10-03")}, 422, "period", "W-MON calendar"),
        (lambda r: {"rows": _edit(r, 3, spend_tv=r[3]["spend_tv"] + 1)}, 422, "spend_tv", "national media spend differs"),
        (lambda r: {"rows": r + r[:1]}, 422, "sku", "more than one row"),
        (lambda r: {"rows": _edit(r, 0, brand="brand_2")}, 422, "brand", "not the brand of SKU"),
        (lambda r: {"rows": _edit(r, 1, sku="no_such_sku")}, 404, "sku", "unknown SKU(s) no_such_sku (rows 1)"),
        (lambda r: {"rows": _edit(r, 0, brand="no_such_brand")}, 404, "brand", "unknown brand(s) no_such_brand"),
        (lambda r: {"rows": [{**r[0], "period": f"{2024 + i // 52}-01-01"} for i in range(51)]}, 413, None, "more than the 50"),
    ],
)
def test_a_client_error_gets_its_status_and_names_the_field(client, rows, make, status, field, text) -> None:
    r = client.post("/predict", json=make(rows))
    assert r.status_code == status, r.text
    body = r.json()
    assert text in body["detail"], body
    if field is not None:
        assert field in body["detail"] or body.get("field") == field, body
    assert "Traceback" not in r.text and "\n" not in body["detail"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_by_name(client, rows, value) -> None:
    for col in ("price", "spend_search"):
        text = json.dumps({"rows": _edit(rows, 1, **{col: 123456.789})}).replace("123456.789", value)  # JSON has no NaN: Python's json does
        r = client.post("/predict", content=text, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == f"rows[1].{col}" and "finite number" in r.json()["detail"]


def test_a_body_over_the_limit_is_413_declared_or_streamed(client, rows) -> None:
    big = json.dumps({"rows": rows * 200}).encode()
    assert len(big) > 200_000
    r = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]

    def chunks():  # no content-length: the body is counted while it arrives
        for i in range(0, len(big), 50_000):
            yield big[i : i + 50_000]

    r = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"]


def test_malformed_json_and_unknown_actuals_are_client_errors(client, rows) -> None:
    r = client.post("/predict", content=b'{"rows": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = client.post("/actuals", json={"rows": [{"period": "2023-10-02", "sku": "nope", "gmv": 1.0}]})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = client.post("/actuals", json={"rows": [{"period": "2023-10-02", "sku": rows[0]["sku"], "gmv": -1.0}]})
    assert r.status_code == 422 and r.json()["field"] == "rows[0].gmv"
    assert client.get("/ab").status_code == 404  # no challenger configured
    assert client.get("/no_such_endpoint").status_code == 404


def test_a_server_fault_is_a_one_line_500_without_a_traceback(client, rows, monkeypatch) -> None:
    served = client.app.state.served

    def broken(*args, **kwargs):
        raise RuntimeError("simulated fault\nwith a second line")

    monkeypatch.setattr(served.model.predictor, "explain", broken)
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 500
    assert r.json()["detail"] == "internal error (RuntimeError); the server log has the details"
    assert "Traceback" not in r.text and "simulated" not in r.text


# ---------------------------------------------------------------------------------------------------- real server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_uvicorn_server_answers_health_and_predict(artifact_dir, rows) -> None:
    import httpx
    import uvicorn

    from nam_mmm.serving.api import ServeConfig, create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ServeConfig(model_dir=str(artifact_dir))), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:  # bounded wait for the socket
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            health = http.get("/health")
            assert health.status_code == 200 and health.json()["model"]
            r = http.post("/predict", json={"rows": rows})
            assert r.status_code == 200 and len(r.json()["rows"]) == len(rows)
            assert http.post("/predict", json={"rows": _edit(rows, 0, sku="nope")}).status_code == 404
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert not thread.is_alive()


def test_the_mlflow_pyfunc_wraps_the_same_artifact(artifact, artifact_dir, tmp_path) -> None:
    import mlflow

    from nam_mmm.serving.mlflow_model import save_artifact_pyfunc

    folder = save_artifact_pyfunc(artifact_dir, tmp_path / "pyfunc")
    model = mlflow.pyfunc.load_model(str(folder))
    request = artifact.predictor.request_rows(artifact.reference)
    np.testing.assert_array_equal(model.predict(request)["gmv"].to_numpy(), artifact.predictor.predict(request)["gmv"].to_numpy())
    copied = folder / "artifacts" / artifact_dir.name
    assert json.loads((copied / "model.json").read_text())["version"] == artifact.version  # one format: the artifact itself
