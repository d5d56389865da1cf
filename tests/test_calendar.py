"""Fourier terms and retail events: golden values, config errors, and the served model rebuilding them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import TINY_RUN, assert_one_line, compose_train
from nam_mmm.data.calendar.events import EVENTS, Event, event_shares, resolve_events
from nam_mmm.data.calendar.features import fourier_terms
from nam_mmm.errors import ConfigError


def test_event_share_counts_the_window_days_inside_each_period():
    weeks = pd.DatetimeIndex(pd.date_range("2023-10-30", periods=3, freq="W-MON"))  # Oct 30, Nov 6, Nov 13
    ev = {"diwali": Event(("2023-11-12",), days_before=10, days_after=1)}  # window Nov 2 … Nov 13
    shares = event_shares(pd.Series(weeks), weeks, ev)["event_diwali"].to_numpy()
    # week of Oct 30 (Oct 30 … Nov 5): Nov 2-5 = 4 days; week of Nov 6: 7 days; week of Nov 13: Nov 13 = 1 day
    np.testing.assert_allclose(shares, [4 / 7, 1.0, 1 / 7])


def test_monthly_event_share_and_periods_outside_the_dates():
    months = pd.DatetimeIndex(pd.date_range("2015-10-01", periods=3, freq="MS"))
    ev = {"diwali": EVENTS["diwali"]}  # 2015-11-11, window Nov 1 … Nov 12
    shares = event_shares(pd.Series(months), months, ev)["event_diwali"].to_numpy()
    np.testing.assert_allclose(shares, [0.0, 12 / 30, 0.0])
    old = pd.DatetimeIndex(pd.date_range("1999-10-01", periods=2, freq="MS"))
    assert (event_shares(pd.Series(old), old, ev)["event_diwali"] == 0).all()


def test_fourier_terms_are_harmonics_of_the_year():
    days = pd.Series(pd.to_datetime(["2023-01-01", "2023-04-02", "2023-07-02"]))
    f = fourier_terms(days, 3)
    assert list(f.columns) == ["fourier_sin_2", "fourier_cos_2", "fourier_sin_3", "fourier_cos_3"]
    pos = (days.dt.dayofyear - 1) / 365.0
    np.testing.assert_allclose(f["fourier_sin_3"], np.sin(2 * np.pi * 3 * pos))
    assert fourier_terms(days, 1).shape == (3, 0)
    with pytest.raises(ConfigError):
        fourier_terms(days, 0)


def test_event_config_errors_are_one_line():
    with pytest.raises(ConfigError) as err:
        resolve_events(["diwali", "onam"])
    assert_one_line(err.value, "onam", "built in")
    with pytest.raises(ConfigError) as err:
        resolve_events({"launch": {"dates": ["12/03/2024"]}})
    assert_one_line(err.value, "launch", "YYYY-MM-DD")
    custom = resolve_events({"launch": {"dates": ["2024-03-12"], "days_before": 0, "days_after": 3}, "christmas": None})
    assert custom["launch"] == Event(("2024-03-12",), 0, 3) and custom["christmas"] is EVENTS["christmas"]


def test_events_and_fourier_join_the_model_features_and_the_served_model_rebuilds_them(tmp_path):
    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.serving.predictor import Predictor
    from nam_mmm.training.loss import LossConfig
    from nam_mmm.training.module import NAMModule
    from nam_mmm.training.runner import ModelSettings, model_config
    from omegaconf import OmegaConf

    cfg = compose_train([*TINY_RUN, "data.features.fourier_order=2", "data.features.events=[diwali,christmas]"])
    table = load_table(cfg.data)
    names = [s.name for s in table.model_specs]
    assert {"fourier_sin_2", "fourier_cos_2", "event_diwali", "event_christmas"} <= set(names)
    assert {s.role for s in table.model_specs if s.name.startswith(("event_", "fourier_"))} == {"seasonality"}
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    dm = PanelDataModule(table, fold)
    settings = ModelSettings(**OmegaConf.to_container(cfg.model, resolve=True))
    module = NAMModule(model_config(dm, settings, OmegaConf.to_container(cfg.constraints, resolve=True)), loss=vars(LossConfig()))
    model = module.model.eval()
    predictor = Predictor.from_datamodule([model], dm)
    predictor.save(tmp_path / "p.pt")
    served = Predictor.load(tmp_path / "p.pt")
    assert not any(c.startswith(("event_", "fourier_")) for c in served.spec.inputs)  # derived, never asked for
    rows = table.frame[table.frame["period"] == table.panel.periods[-1]]
    got = served.predict(served.request_rows(rows))["gmv"].to_numpy()
    import torch

    b = dm.tensors(dm.split_mask("all"))
    with torch.no_grad():
        want = model(b["x"], b["media"], b["brand"], b["sku"])["log_gmv"].exp().numpy()[dm.arrays.period == len(table.panel.periods) - 1]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_input_clamp_keeps_predictions_flat_beyond_the_observed_range():
    """A far-out-of-range input (a trend 10 years ahead, a price 100x) predicts as at the clamp edge, not on a linear tail."""
    import torch

    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.models.nam import HierarchicalNAM
    from nam_mmm.training.runner import ModelSettings, model_config
    from omegaconf import OmegaConf

    cfg = compose_train(TINY_RUN)
    table = load_table(cfg.data)
    (fold,) = make_splitter(cfg.validation).split(table.panel.periods)
    dm = PanelDataModule(table, fold)
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    torch.manual_seed(0)
    clamped = HierarchicalNAM.from_dict(model_config(dm, ModelSettings(input_clamp=0.25), constraints))
    config = clamped.to_dict()
    assert config["input_clamp"] == 0.25
    free = HierarchicalNAM.from_dict({k: v for k, v in config.items() if k != "input_clamp"})
    with torch.no_grad():
        for p in clamped.parameters():  # give the linear trend a slope, so extrapolation shows
            p.add_(0.05)
        missing, unexpected = free.load_state_dict(clamped.state_dict(), strict=False)
    assert not missing and set(unexpected) == {"z_lo", "z_hi"}
    b = dm.tensors(dm.split_mask("train"))
    j = [s.name for s in table.model_specs].index("time_index")
    far, edge = b["x"].clone(), b["x"].clone()
    far[:, j] = 10_000.0
    z_hi = float(clamped.z_hi[j])
    edge[:, j] = float(clamped.center[0, j] + z_hi * clamped.scale[j])  # the raw value at the clamp edge
    with torch.no_grad():
        at_far = clamped(far, b["media"], b["brand"], b["sku"])["log_gmv"]
        at_edge = clamped(edge, b["media"], b["brand"], b["sku"])["log_gmv"]
        inside = clamped(b["x"], b["media"], b["brand"], b["sku"])["log_gmv"]
        inside_free = free(b["x"], b["media"], b["brand"], b["sku"])["log_gmv"]
        far_free = free(far, b["media"], b["brand"], b["sku"])["log_gmv"]
    torch.testing.assert_close(at_far, at_edge)
    torch.testing.assert_close(inside, inside_free)  # inside the observed range nothing changes
    assert not torch.allclose(far_free, at_far)
