"""Serving: the trained model as a predictor of GMV from raw features, and as an MLflow pyfunc."""
