"""Inspect a data source: validation report, feature table with roles, VIF, correlations and the fold plan.

    python scripts/inspect_data.py                      # synthetic default
    python scripts/inspect_data.py data=dtmart          # the real DT Mart set
    python scripts/inspect_data.py data=panel_csv data.source.path=my.csv

Writes ``report.txt``, ``validation.json``, ``features.csv``, ``vif.csv`` and ``folds.csv`` into the Hydra run folder.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nam_mmm.entry import load_table, make_splitter, one_line_errors


@one_line_errors
def inspect(cfg: DictConfig) -> str:
    from nam_mmm.data.quality.diagnostics import decompose_total, high_correlation_pairs, vif_table

    table = load_table(cfg.data)
    panel = table.panel
    out = Path(HydraConfig.get().runtime.output_dir)
    folds = make_splitter(cfg.validation).split(panel.periods)
    fold_df = pd.DataFrame([f.describe() for f in folds])
    vif = vif_table(table)
    pairs = high_correlation_pairs(table, cfg.correlation_threshold)
    _, decomposition = decompose_total(table)
    fit_rows = int((table.frame["fit_weight"] > 0).sum())
    left_out = [f"SKU '{sku}' dropped: {why}" for sku, why in panel.dropped_units.items()]
    left_out += [f"SKU '{sku}' has no row that enters the fit" for sku in panel.units_without_fit_rows()]
    sections = [
        f"source: {panel.source}",
        f"panel: {len(panel.periods)} periods ({panel.periods[0].date()} … {panel.periods[-1].date()}, freq {panel.freq}), "
        f"{len(panel.brands)} brands, {len(panel.skus)} SKUs, {len(panel.channels)} media channels, "
        f"{len(table.frame)} rows ({fit_rows} enter the fit)",
        *(f"warning: {line}" for line in left_out),
        "",
        "== validation ==",
        panel.report.to_text(),
        "",
        "== features (role, formula, units) ==",
        table.roles_table().to_string(index=False),
        "",
        "== multicollinearity: VIF ==",
        vif.to_string(index=False),
        vif.attrs.get("note", ""),
        "",
        f"== feature pairs with |r| >= {cfg.correlation_threshold} ==",
        pairs.to_string(index=False) if len(pairs) else "none",
        "",
        f"== decomposition: {decomposition} ==",
        "",
        f"== fold plan: {cfg.validation.name}, {len(folds)} folds ==",
        fold_df.to_string(index=False),
    ]
    text = "\n".join(sections)
    (out / "report.txt").write_text(text + "\n")
    panel.report.save(out / "validation.json")
    table.roles_table().to_csv(out / "features.csv", index=False)
    vif.to_csv(out / "vif.csv", index=False)
    fold_df.to_csv(out / "folds.csv", index=False)
    print(text)
    print(f"\nsaved to {out}")
    return text


@hydra.main(config_path="../conf", config_name="inspect", version_base="1.3")
def main(cfg: DictConfig) -> None:
    inspect(cfg)


if __name__ == "__main__":
    main()
