"""A/B test of two models on live traffic (seed §13.2): a seeded split of requests, errors once actuals arrive,
Welch's t-test on the absolute percentage errors.

Arm ``A`` is the served model (champion), arm ``B`` the challenger. A request goes to ``B`` when
``u(seed, key) < share``, ``u`` a uniform number from the SHA-256 of the seed and the request's key (the client's
``request_id``, else the server's request counter): the same seed and keys give the same split on any machine,
and a client that repeats a request id gets the same model. Each matched actual adds the row's absolute
percentage error (APE, %) to the arm that predicted it; :meth:`ABTest.report` compares the arms' mean APE (their
MAPE) with Welch's unequal-variance t-test.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import asdict, dataclass

import numpy as np

from nam_mmm.errors import ConfigError

ARMS = ("A", "B")


@dataclass
class ABConfig:
    """``ab`` in ``conf/serve.yaml``."""

    share: float = 0.5  # share of requests routed to the challenger (arm B)
    seed: int = 0  # seed of the split
    alpha: float = 0.05  # significance level of the Welch test
    min_actuals: int = 10  # matched actuals per arm before a verdict

    def __post_init__(self) -> None:
        if not 0.0 < float(self.share) < 1.0:
            raise ConfigError(f"ab.share must be in (0, 1), got {self.share!r}")
        if not 0.0 < float(self.alpha) < 1.0:
            raise ConfigError(f"ab.alpha must be in (0, 1), got {self.alpha!r}")
        if int(self.min_actuals) < 2:
            raise ConfigError(f"ab.min_actuals must be >= 2 (a t-test needs two errors per arm), got {self.min_actuals!r}")


def split_value(seed: int, key: str) -> float:
    """Uniform number in [0, 1) from the seed and a key (stable across processes and machines)."""
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ABTest:
    """Routing and analysis of one A/B test between ``versions = {"A": ..., "B": ...}``."""

    def __init__(self, config: ABConfig, versions: dict[str, str]) -> None:
        self.config = config
        self.versions = dict(versions)
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self.errors: dict[str, list[float]] = {a: [] for a in ARMS}
        self.requests: dict[str, int] = {a: 0 for a in ARMS}

    def assign(self, key: str | None = None) -> str:
        """The arm of a request with this key (``None``: the next value of the request counter)."""
        with self._lock:
            if key is None:
                key = f"#{next(self._counter)}"
            arm = "B" if split_value(self.config.seed, key) < float(self.config.share) else "A"
            self.requests[arm] += 1
        return arm

    def record(self, arm: str, ape: float) -> None:
        if arm in self.errors and np.isfinite(ape):
            with self._lock:
                self.errors[arm].append(float(ape))

    def report(self) -> dict:
        """Per arm: requests, matched actuals, MAPE; Welch's t and p, improvement of B over A, verdict."""
        from scipy import stats

        with self._lock:
            a, b = np.asarray(self.errors["A"]), np.asarray(self.errors["B"])
            requests = dict(self.requests)
        out = {
            "arms": {arm: {"model": self.versions.get(arm), "requests": requests[arm], "actuals": int(len(e)), "mape": float(e.mean()) if len(e) else None} for arm, e in (("A", a), ("B", b))},
            "config": asdict(self.config),
            "t": None,
            "p_value": None,
            "improvement_pct": None,
            "significant": False,
        }
        need = int(self.config.min_actuals)
        if len(a) < need or len(b) < need:
            out["verdict"] = f"waiting for actuals: {len(a)} (A) and {len(b)} (B) of {need} per arm"
            return out
        res = stats.ttest_ind(a, b, equal_var=False)  # Welch
        t, p = float(res.statistic), float(res.pvalue)
        improvement = (a.mean() - b.mean()) / a.mean() * 100.0 if a.mean() > 0 else None
        significant = bool(np.isfinite(p) and p < float(self.config.alpha))
        out.update({"t": t if np.isfinite(t) else None, "p_value": p if np.isfinite(p) else None, "improvement_pct": improvement, "significant": significant})
        if not significant:
            out["verdict"] = f"no significant difference (Welch p = {p:.3g} >= {self.config.alpha:g})" if np.isfinite(p) else "no difference (identical errors)"
        else:
            better = "B (challenger)" if b.mean() < a.mean() else "A (champion)"
            out["verdict"] = f"{better} has the lower MAPE ({b.mean():.2f} % vs {a.mean():.2f} %), Welch p = {p:.3g} < {self.config.alpha:g}"
        return out
