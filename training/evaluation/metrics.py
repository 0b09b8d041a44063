"""Metrics: AUC with percentile-bootstrap 95 % CIs, precision@k, sens/spec at thresholds."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from dicom_node.errors import TrainingError


@dataclass(frozen=True)
class AucResult:
    """AUC with its bootstrap confidence interval."""

    auc: float
    low: float
    high: float
    n: int
    positives: int
    n_boot: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.auc:.3f} ({self.low:.3f}–{self.high:.3f})"


def _as_arrays(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise TrainingError(f"{y.size} labels for {s.size} scores")
    if not np.all(np.isin(y, (0, 1))):
        raise TrainingError("labels must be 0 or 1")
    return y, s


def auc_mann_whitney(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count one half); NaN with one class."""
    y, s = _as_arrays(labels, scores)
    pos = int(y.sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def bootstrap_auc(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AucResult:
    """AUC and its percentile-bootstrap CI (studies resampled with replacement).

    Resamples with a single class are drawn again (they have no AUC), so every
    one of the ``n_boot`` replicates counts.
    """
    y, s = _as_arrays(labels, scores)
    auc = auc_mann_whitney(y, s)
    pos = int(y.sum())
    if math.isnan(auc):
        return AucResult(math.nan, math.nan, math.nan, int(y.size), pos, 0)
    replicates = bootstrap_auc_replicates(y, s, n_boot, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return AucResult(float(auc), float(low), float(high), int(y.size), pos, n_boot)


def bootstrap_auc_replicates(
    labels: npt.ArrayLike, scores: npt.ArrayLike, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """``n_boot`` AUCs of studies resampled with replacement (single-class draws redrawn).

    Both classes must be present in ``labels``.
    """
    y, s = _as_arrays(labels, scores)
    rng = np.random.default_rng(seed)
    replicates: list[float] = []
    while len(replicates) < n_boot:
        idx = rng.integers(0, y.size, size=(n_boot - len(replicates), y.size))
        yb = y[idx]
        sb = s[idx]
        npos = yb.sum(axis=1)
        ok = (npos > 0) & (npos < y.size)
        if not ok.any():
            continue
        yb, sb, npos = yb[ok], sb[ok], npos[ok]
        ranks = rankdata(sb, axis=1)
        nneg = y.size - npos
        aucs = ((ranks * yb).sum(axis=1) - npos * (npos + 1) / 2) / (npos * nneg)
        replicates.extend(float(a) for a in aucs)
    return np.asarray(replicates[:n_boot])


def precision_at_k(labels: npt.ArrayLike, scores: npt.ArrayLike, k: int = 15) -> float:
    """Fraction of positives among the ``k`` highest-scored studies (retrieval P@k)."""
    y, s = _as_arrays(labels, scores)
    if y.size == 0:
        return math.nan
    k = min(k, y.size)
    order = np.argsort(-s, kind="stable")[:k]
    return float(y[order].mean())
