"""Ridge-calibrated shrinkage of the HR-NAM's curves (``loss.lambda_function: auto``).

A panel of a few dozen rows cannot support free curves: out of sample they lose to each unit's own mean.
The linear model in the same feature space knows how much shrinkage the data support — its ridge penalty
chosen by rolling-origin cross-validation inside the fold's training window — and the HR-NAM's
function-space penalty ``mean_rows Σ_j f_j(z)²`` equals that ridge penalty for linear curves once the design
columns have unit second moment. So the fold's ridge penalty becomes the fold's ``lambda_function``: no test
data, no tuning on the panel at hand, and the curves may still bend where the data ask for it.
"""

from __future__ import annotations

import numpy as np

from nam_mmm.data.features.design import linear_design
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.models.linear import select_alpha, unit_rms


def ridge_shrinkage(dm: PanelDataModule) -> float:
    """The fold's function-space penalty: the cross-validated ridge penalty of the unit-RMS linear design on
    the training rows (fit weight > 0) with the fold's scaler and the table's fixed adstock decays. Every
    training period with enough history is an origin (a short panel has few; one origin of five rows is noise)."""
    a = dm.arrays
    mask = dm.split_mask("train") & (a.weight > 0)
    design = linear_design(a.x[mask], a.media[mask], a.sku[mask], a.period[mask], a.log_gmv[mask], dm.scaler, np.asarray(dm.table.decay))
    return select_alpha(design.z / unit_rms(design.z), design.log_gmv, design.unit, design.period, dm.n_skus, n_origins=None)
