"""nam-mmm's Optuna sweeper for Hydra (``hydra/sweeper=nam_optuna``, see ``conf/hparams_search/nam_optuna.yaml``)."""
