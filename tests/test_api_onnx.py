"""The optional ONNX export (``pip install -e ".[onnx]"``): the exported graph predicts what the artifact predicts.

Skipped where the extra is not installed (``make test`` installs ``.[dev]`` only).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import train_in_process

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

WALK_FORWARD = ["validation=walk_forward", "data.walk_forward.initial_train=24", "data.walk_forward.test_size=6", "data.walk_forward.step=6", "data.walk_forward.val_size=4"]


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory) -> Path:
    from nam_mmm.serving.artifact import export_artifact

    base = tmp_path_factory.mktemp("onnx")
    train_in_process(base / "run", WALK_FORWARD)  # a 2-model fold ensemble: the graph holds both members
    return export_artifact(base / "run", base / "artifact")


def test_the_onnx_graph_predicts_what_the_artifact_predicts(artifact_dir, tmp_path) -> None:
    from nam_mmm.serving.artifact import ModelArtifact
    from nam_mmm.serving.onnx_export import OnnxPredictor, export_onnx

    before = (artifact_dir / "model.json").read_text()
    graph = export_onnx(artifact_dir, tmp_path / "model.onnx")
    onnx_model = OnnxPredictor(artifact_dir, graph)
    artifact = ModelArtifact.load(artifact_dir)
    ref = artifact.reference
    for request in (artifact.predictor.request_rows(ref), artifact.predictor.request_rows(ref.tail(3))):  # the row count is dynamic
        got, want = onnx_model.predict(request), artifact.predictor.predict(request)
        np.testing.assert_allclose(got["gmv"].to_numpy(), want["gmv"].to_numpy(), rtol=1e-5)
        np.testing.assert_allclose(got["log_gmv_sd"].to_numpy(), want["log_gmv_sd"].to_numpy(), atol=1e-5)
        assert (got["out_of_range"] == want["out_of_range"]).all()
    assert onnx_model.max_rel_diff <= 1e-5
    assert (artifact_dir / "model.json").read_text() == before and ModelArtifact.load(artifact_dir).version == artifact.version


def test_a_graph_of_another_model_is_refused(artifact_dir, tmp_path) -> None:
    import shutil

    import pandas as pd
    import torch

    from nam_mmm.serving.artifact import METADATA, ArtifactError, ModelArtifact, sha256
    from nam_mmm.serving.onnx_export import OnnxPredictor, export_onnx
    from nam_mmm.serving.predictor import Predictor

    other = shutil.copytree(artifact_dir, tmp_path / "other")
    d = torch.load(other / "predictor.pt", weights_only=False)
    for m in d["ensemble"]["members"]:
        m["state"]["bias_sku"] = m["state"]["bias_sku"] + 0.5  # a different model with the same inputs
    torch.save(d, other / "predictor.pt")
    check = json.loads((other / "check.json").read_text())
    check["gmv"] = [float(v) for v in Predictor.load(other / "predictor.pt").predict(pd.DataFrame(check["request"]))["gmv"]]
    (other / "check.json").write_text(json.dumps(check))
    meta = json.loads((other / METADATA).read_text())
    meta["files"] = {n: sha256(other / n) for n in meta["files"]}
    (other / METADATA).write_text(json.dumps(meta))
    ModelArtifact.load(other)  # a valid artifact of its own
    graph = export_onnx(other, tmp_path / "other.onnx")
    with pytest.raises(ArtifactError, match="the ONNX graph predicts the self-check rows"):
        OnnxPredictor(artifact_dir, graph)
    with pytest.raises(ArtifactError, match="not into it"):
        export_onnx(artifact_dir, artifact_dir / "model.onnx")
