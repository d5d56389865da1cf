"""The served model: raw features in, GMV out — the same numbers as the training run, through MLflow too.

One tiny holdout run with MLflow tracking (in-process) is shared by the module: it writes ``predictor.pt`` and
logs the pyfunc. The tests check that the request path (schema, carry-over from history, calendar features
derived from the period) reproduces the run's own predictions, that scenarios behave as documented, and that
a bad request gets a one-line error naming the column and rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_RUN, assert_one_line, train_in_process
from nam_mmm.errors import DataError
from nam_mmm.serving.predictor import Predictor


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> dict:
    """A tiny holdout run logged to a temporary MLflow store: run folder, store URI, run id."""
    base = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{base}/store/mlflow.db"
    (base / "store").mkdir()
    overrides = [*[o for o in TINY_RUN if o != "logger=none"], "logger=mlflow", f"logger.mlflow.tracking_uri={uri}", f"logger.mlflow.artifact_location={base}/store/artifacts"]
    train_in_process(base / "run", overrides, base=[])  # restores the torch thread count itself
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("nam-mmm").experiment_id])
    return {"dir": base / "run", "uri": uri, "run": run}


@pytest.fixture(scope="module")
def predictor(served) -> Predictor:
    return Predictor.load(served["dir"] / "predictor.pt")


@pytest.fixture(scope="module")
def panel_request(served, predictor) -> pd.DataFrame:
    """Every row of the training panel as a request (raw features, one row per SKU-period)."""
    from omegaconf import OmegaConf

    from nam_mmm.entry import load_table

    table = load_table(OmegaConf.load(served["dir"] / "config.yaml").data)
    return predictor.request_rows(table.frame)


def run_predictions(served) -> pd.DataFrame:
    return pd.read_csv(served["dir"] / "predictions.csv")


def test_a_request_of_the_panel_rows_reproduces_the_runs_predictions(served, predictor, panel_request) -> None:
    out = predictor.predict(panel_request)
    expected = run_predictions(served)
    assert len(out) == len(expected) == 40 * 4
    np.testing.assert_allclose(out["gmv"].to_numpy(), expected["predicted"].to_numpy(), rtol=1e-5)
    assert (out["log_gmv_sd"] == 0).all()  # a holdout run serves one model: no spread


def test_the_request_schema_is_raw_features_without_derived_ones(predictor, panel_request) -> None:
    assert list(panel_request.columns[:2]) == ["period", "sku"]
    assert {"price", "cross_price", "discount", "promo_days", "nps", "spend_tv", "spend_social"} <= set(panel_request.columns)
    assert not {"month_sin", "month_cos", "time_index", "festive"} & set(panel_request.columns)  # derived from the period
    assert panel_request["period"].str.match(r"^\d{4}-\d{2}-\d{2}$").all()  # ISO dates travel as JSON strings


def test_mlflow_pyfunc_round_trip_gives_the_same_predictions(served, predictor, panel_request) -> None:
    import mlflow

    run = served["run"]
    assert run.data.tags["model_uri"] == f"runs:/{run.info.run_id}/model"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(served["uri"])
    try:
        model = mlflow.pyfunc.load_model(run.data.tags["model_uri"])
    finally:
        mlflow.set_tracking_uri(previous)
    got = model.predict(panel_request)
    np.testing.assert_allclose(got["gmv"].to_numpy(), predictor.predict(panel_request)["gmv"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["gmv"].to_numpy(), run_predictions(served)["predicted"].to_numpy(), rtol=1e-5)

    # the signature names the raw feature columns; the logged input example is real panel rows that it accepts
    schema = model.metadata.get_input_schema()
    assert schema.input_names() == list(panel_request.columns)
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"{run.info.artifact_uri}/model", tracking_uri=served["uri"])
    example = json.loads((Path(local) / "serving_input_example.json").read_text())["dataframe_split"]
    example_df = pd.DataFrame(example["data"], columns=example["columns"])
    assert len(example_df) == 4 and (model.predict(example_df)["gmv"] > 0).all()


def test_a_bad_request_through_mlflow_is_a_one_line_reason(served) -> None:
    from mlflow.exceptions import MlflowException

    from nam_mmm.serving.mlflow_model import NAMPyfunc

    model = NAMPyfunc()
    model.predictor = Predictor.load(served["dir"] / "predictor.pt")
    request = model.predictor.request_rows(pd.DataFrame({"period": ["2023-01-02"], "sku": ["no_such_sku"], **{c: [1.0] for c in model.predictor.spec.inputs}}))
    with pytest.raises(MlflowException) as err:
        model.predict(None, request)
    assert "no_such_sku" in err.value.message and "column 'sku'" in err.value.message
    assert err.value.get_http_status_code() == 400


def test_a_subset_request_takes_carry_over_from_the_history(predictor, panel_request) -> None:
    full = predictor.predict(panel_request)
    last = panel_request["period"] == panel_request["period"].max()
    alone = predictor.predict(panel_request[last])  # next month's scenario: only its own rows are sent
    np.testing.assert_allclose(alone["gmv"].to_numpy(), full.loc[last.to_numpy(), "gmv"].to_numpy(), rtol=1e-6)


def test_spend_in_a_request_changes_later_periods_through_carry_over(predictor, panel_request) -> None:
    periods = sorted(panel_request["period"].unique())
    t, t1 = periods[-2], periods[-1]
    rows = panel_request[panel_request["period"].isin([t, t1])].reset_index(drop=True)
    base = predictor.predict(rows)
    more = rows.copy()
    more.loc[more["period"] == t, "spend_tv"] *= 3  # a heavier TV week at t, nothing else changed
    after = predictor.predict(more)
    nxt = (rows["period"] == t1).to_numpy()
    assert (after.loc[nxt, "gmv"].to_numpy() >= base.loc[nxt, "gmv"].to_numpy() * (1 - 1e-7)).all()  # media never lowers GMV
    assert (after.loc[nxt, "gmv"].to_numpy() > base.loc[nxt, "gmv"].to_numpy()).any()  # the carry-over reaches t+1


def test_periods_after_the_calendar_continue_it(predictor, panel_request) -> None:
    last = panel_request[panel_request["period"] == panel_request["period"].max()].copy()
    nxt = last.assign(period=(pd.Timestamp(last["period"].iloc[0]) + pd.Timedelta(weeks=1)).strftime("%Y-%m-%d"))
    out = predictor.predict(nxt)
    assert np.isfinite(out["gmv"]).all() and (out["gmv"] > 0).all()
    gap = last.assign(period=(pd.Timestamp(last["period"].iloc[0]) + pd.Timedelta(weeks=3)).strftime("%Y-%m-%d"))
    assert len(predictor.predict(gap)) == len(gap)  # unseen periods in between count as zero spend


@pytest.mark.parametrize(
    "edit, parts",
    [
        (lambda r: r.drop(columns=["price", "spend_tv"]), ["missing column(s) price, spend_tv"]),
        (lambda r: r.assign(sku=["x"] + list(r["sku"].iloc[1:])), ["column 'sku'", "rows 1", "not trained on: x"]),
        (lambda r: r.assign(period="2023-01-04"), ["column 'period'", "W-MON calendar"]),
        (lambda r: r.assign(period="1999-01-04"), ["column 'period'", "before the model's first period"]),
        (lambda r: r.assign(period=["soon"] * len(r)), ["column 'period'", "not a date"]),
        (lambda r: r.assign(price=[10.0, 0.0, 10.0, 10.0]), ["column 'price'", "rows 2", "> 0"]),
        (lambda r: r.assign(nps=[40.0, None, 40.0, 40.0]), ["column 'nps'", "rows 2", "missing"]),
        (lambda r: r.assign(spend_tv=[1.0, 2.0, 1.0, 1.0]), ["column 'spend_tv'", "national media spend differs"]),
        (lambda r: pd.concat([r, r.iloc[:1]]), ["more than one row for the same SKU and period"]),
    ],
)
def test_a_bad_request_gets_a_one_line_error_naming_column_and_rows(predictor, panel_request, edit, parts) -> None:
    rows = panel_request[panel_request["period"] == panel_request["period"].max()].reset_index(drop=True)
    with pytest.raises(DataError) as err:
        predictor.predict(edit(rows))
    assert_one_line(err.value, "request", *parts)
