"""Experiment loggers."""

from __future__ import annotations

import time
from collections.abc import Mapping

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only


class BufferedMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger, writing metrics in batches instead of one store transaction per call.

    On small panels an epoch takes a few milliseconds while each sqlite write takes about ten, so metrics are
    kept in memory (with their step and time) and written ``flush_every`` calls at a time, and at the end.

    Args:
        flush_every: logging calls buffered before a write.
        *args, **kwargs: those of :class:`lightning.pytorch.loggers.MLFlowLogger`.
    """

    MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call

    def __init__(self, *args, flush_every: int = 200, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flush_every = flush_every
        self._pending: list[tuple[dict[str, float], int, int]] = []

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {k: float(v) for k, v in metrics.items() if not isinstance(v, str)}
        self._pending.append((values, int(step or 0), int(time.time() * 1000)))
        if len(self._pending) >= self.flush_every:
            self.flush()

    @rank_zero_only
    def flush(self) -> None:
        """Write every buffered metric to the tracking store."""
        if not self._pending:
            return
        from mlflow.entities import Metric

        batch = [Metric(key=k, value=v, timestamp=ts, step=step) for values, step, ts in self._pending for k, v in values.items()]
        self._pending.clear()
        for i in range(0, len(batch), self.MAX_BATCH):
            self.experiment.log_batch(run_id=self.run_id, metrics=batch[i : i + self.MAX_BATCH])

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self.flush()
        super().finalize(status)
