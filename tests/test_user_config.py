"""A user with their own data writes one YAML (inheriting conf/data/panel_csv.yaml) and nothing else."""

from __future__ import annotations

from pathlib import Path

from nam_mmm.data.panel import PERIOD
from nam_mmm.data.sources.synthetic import load_synthetic
from nam_mmm.entry import load_table, make_splitter

USER_YAML = """
defaults:
  - panel_csv
  - _self_
name: my_panel
source:
  path: {path}
  date: month
  target: sales
  own_price: avg_price
  discount: discount
  promo: promo_days
  brand_health: nps_score
features:
  model_features: [price, cross_price, discount, promo_days, nps]
  max_lag: 2
walk_forward:
  initial_train: 18
  test_size: 3
  step: 3
"""


def test_one_user_yaml_is_enough(tmp_path: Path, compose) -> None:
    panel = load_synthetic(n_brands=2, skus_per_brand=2, n_periods=30, freq="MS", start="2022-01-01", seed=1)
    frame = panel.frame.rename(columns={PERIOD: "month", "gmv": "sales", "price": "avg_price", "nps": "nps_score"})
    cols = ["month", "brand", "sku", "sales", "avg_price", "discount", "promo_days", "nps_score", "spend_tv", "spend_search"]
    csv = tmp_path / "my_sales.csv"
    frame[cols].to_csv(csv, index=False)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "my_panel.yaml").write_text(USER_YAML.format(path=csv))

    cfg = compose("inspect", ["data=my_panel", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"])
    table = load_table(cfg.data)
    assert table.channels == ["tv", "search"]  # from the inherited "spend_*" glob
    assert table.panel.freq == "MS"
    assert [s.name for s in table.model_specs] == ["price", "cross_price", "discount", "promo_days", "nps"]
    # the derived cross price equals the generator's (mean price of the other SKU of the brand)
    merged = table.frame.merge(panel.frame[[PERIOD, "sku", "cross_price"]], on=[PERIOD, "sku"], suffixes=("", "_true"))
    assert (merged["cross_price"] - merged["cross_price_true"]).abs().max() < 1e-6 * merged["cross_price"].max()
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    assert len(folds) == 4 and all(len(f.test) == 3 for f in folds)
