"""The predictor as an MLflow pyfunc: ``mlflow models serve -m runs:/<run id>/model --env-manager local``.

The model folder holds ``predictor.pt`` (:class:`~nam_mmm.serving.predictor.Predictor`), the signature and an
input example (real rows of the training panel); or, written by :func:`save_artifact_pyfunc`, the whole model
artifact folder (:mod:`nam_mmm.serving.artifact`, the same ``predictor.pt`` with its metadata), verified on load.
Loading it needs nam-mmm importable (the project's venv).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from nam_mmm.errors import NamMMMError
from nam_mmm.serving.predictor import Predictor

ARTIFACT_PATH = "model"  # runs:/<run id>/model


class NAMPyfunc(mlflow.pyfunc.PythonModel):
    """``predict(DataFrame of raw features, one row per SKU-period) -> DataFrame(gmv, log_gmv_sd)``."""

    def load_context(self, context) -> None:
        if "artifact" in context.artifacts:  # a model artifact folder (save_artifact_pyfunc): verified as the API does
            from nam_mmm.serving.artifact import ModelArtifact

            self.artifact = ModelArtifact.load(context.artifacts["artifact"])
            self.predictor = self.artifact.predictor
            return
        self.predictor = Predictor.load(context.artifacts["predictor"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            return self.predictor.predict(model_input)
        except NamMMMError as err:  # a bad request: the one-line reason goes back to the client (HTTP 400)
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import BAD_REQUEST

            raise MlflowException(str(err), error_code=BAD_REQUEST) from None


def _requirements() -> list[str]:
    import lightning
    import numpy
    import omegaconf
    import torch

    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"lightning=={lightning.__version__}",
        f"mlflow=={mlflow.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={numpy.__version__}",
        f"omegaconf=={omegaconf.__version__}",
    ]


def save_pyfunc(predictor: Predictor, predictor_path: Path, example: pd.DataFrame, path: Path) -> Path:
    """Write the pyfunc model folder at ``path``: ``predictor`` (saved at ``predictor_path``) as its artifact, the
    signature inferred from ``example`` and its predictions."""
    from mlflow.models import infer_signature

    signature = infer_signature(example, predictor.predict(example))
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # model from code: no pickled class
        artifacts={"predictor": str(predictor_path)},
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(),  # explicit: inferring them would import and probe the environment
    )
    return path


def save_artifact_pyfunc(artifact_dir: Path, path: Path) -> Path:
    """Write the pyfunc model folder at ``path`` around a model artifact (:mod:`nam_mmm.serving.artifact`): the
    whole artifact folder travels as the pyfunc's artifact and is verified (checksums, self-check) when MLflow
    loads it; the signature and input example are the artifact's own self-check rows."""
    from nam_mmm.serving.artifact import ModelArtifact

    artifact = ModelArtifact.load(artifact_dir)
    example = pd.DataFrame(json.loads((Path(artifact_dir) / "check.json").read_text())["request"])
    from mlflow.models import infer_signature

    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={"artifact": str(artifact_dir)},
        signature=infer_signature(example, artifact.predictor.predict(example)),
        input_example=example,
        pip_requirements=_requirements(),
    )
    return Path(path)


def log_pyfunc(client, run_id: str, predictor: Predictor, predictor_path: Path, example: pd.DataFrame) -> str:
    """Save the pyfunc and log it into the artifacts of ``run_id``; returns the model URI ``runs:/<id>/model``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pyfunc(predictor, predictor_path, example, Path(tmp) / ARTIFACT_PATH)
        client.log_artifacts(run_id, str(folder), ARTIFACT_PATH)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"
