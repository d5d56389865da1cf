"""Optional ONNX export of a model artifact's tensor core (``pip install -e ".[onnx]"``).

What ONNX can hold is the model's tensor function ``(x, media, brand, sku) → (log GMV, spread across fold
models)``; a request's path to those tensors — validation, calendar and event features derived from dates, the
carry-over lag stacks built from the spend history — stays the artifact's Python :class:`Predictor`
(``Predictor.model_inputs``), so both runtimes see exactly the same inputs. :class:`OnnxPredictor` runs that path
and then the ONNX graph in onnxruntime; on load it replays the artifact's self-check rows and refuses a graph
that predicts more than ``rtol`` (relative) away from the export-time predictions. The graph is written next to
the artifact, never into it (an artifact's files do not change after export).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nam_mmm.serving.artifact import ArtifactError, ModelArtifact

INPUTS = ["x", "media", "brand", "sku"]
OUTPUTS = ["log_gmv", "log_gmv_sd"]
RTOL = 1e-5  # ONNX runtime kernels differ from torch's in the last bits: equal within this, not bit for bit


class _Core(torch.nn.Module):
    def __init__(self, ensemble: torch.nn.Module) -> None:
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x, media, brand, sku):
        out = self.ensemble(x, media, brand, sku)
        return out["log_gmv"], out["log_gmv_sd"]


def export_onnx(artifact_dir: str | Path, path: str | Path) -> Path:
    """Write the ONNX graph of the artifact's model at ``path`` (a dynamic number of rows)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ArtifactError('ONNX export needs the optional extra: pip install -e ".[onnx]"') from None
    artifact = ModelArtifact.load(artifact_dir)
    check = pd.DataFrame(json.loads((Path(artifact_dir) / "check.json").read_text())["request"])
    inputs, _ = artifact.predictor.model_inputs(check)
    path = Path(path)
    if path.resolve().parent == Path(artifact_dir).resolve():
        raise ArtifactError(f"{path}: write the ONNX graph next to the artifact, not into it (its files are checksummed)")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        _Core(artifact.predictor.model).eval(), tuple(inputs), str(path),
        input_names=INPUTS, output_names=OUTPUTS, dynamic_axes={k: {0: "rows"} for k in INPUTS + OUTPUTS},
        dynamo=False,  # the TorchScript exporter: needs onnx only, and keeps the row count dynamic
    )
    return path


class OnnxPredictor:
    """GMV from raw features through the artifact's request path and the ONNX graph (onnxruntime)."""

    def __init__(self, artifact_dir: str | Path, onnx_path: str | Path, rtol: float = RTOL) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArtifactError('serving the ONNX graph needs the optional extra: pip install -e ".[onnx]"') from None
        self.artifact = ModelArtifact.load(artifact_dir)
        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        check = json.loads((Path(artifact_dir) / "check.json").read_text())
        got = self.predict(pd.DataFrame(check["request"]))["gmv"].to_numpy(dtype=float)
        expected = np.asarray(check["gmv"], dtype=float)
        rel = float(np.max(np.abs(got - expected) / np.abs(expected)))
        if not rel <= rtol:
            raise ArtifactError(f"{onnx_path}: the ONNX graph predicts the self-check rows up to {rel:.3g} (relative) away from the artifact {self.artifact.version}; export it again from this artifact")
        self.max_rel_diff = rel

    def predict(self, request: pd.DataFrame) -> pd.DataFrame:
        inputs, flags = self.artifact.predictor.model_inputs(request)
        log_gmv, sd = self.session.run(OUTPUTS, {k: v.numpy() for k, v in zip(INPUTS, inputs, strict=True)})
        return pd.DataFrame({"gmv": np.exp(log_gmv), "log_gmv_sd": sd, "out_of_range": flags.to_numpy()})
