"""MLflow "model from code" entry: the file MLflow copies into the model folder and runs to build the pyfunc."""

from mlflow.models import set_model

from nam_mmm.serving.mlflow_model import NAMPyfunc

set_model(NAMPyfunc())
