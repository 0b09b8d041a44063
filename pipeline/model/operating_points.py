"""Operating points: thresholds that turn a continuous finding score into present/absent.

Thresholds are chosen on the *validation* split (never on test) and stored in the
bundle's query bank. Two rules are provided:

* ``sens90`` — the highest threshold whose sensitivity is at least 0.90 (a triage
  tool should miss few abnormal studies);
* ``youden`` — the threshold maximising Youden's J = sensitivity + specificity - 1.

A study is called *present* when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from dicom_node.errors import TrainingError

OPERATING_POINTS = ("sens90", "youden")


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of one finding at each named operating point."""

    sens90: float
    youden: float

    def get(self, name: str) -> float:
        """The threshold of operating point ``name`` (one of :data:`OPERATING_POINTS`)."""
        if name == "sens90":
            return self.sens90
        if name == "youden":
            return self.youden
        raise TrainingError(f"operating point {name!r} is not one of {OPERATING_POINTS}")


def _check(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise TrainingError(f"labels shape {y.shape} and scores shape {s.shape} differ")
    if not np.all(np.isin(y, (0, 1))):
        raise TrainingError("labels must be 0 or 1")
    if y.min(initial=1) == y.max(initial=0):
        raise TrainingError(
            f"threshold selection needs both classes; got {int(y.sum())} positives of {y.size}"
        )
    if not np.all(np.isfinite(s)):
        raise TrainingError("scores contain NaN or infinite values")
    return y, s


def threshold_at_sensitivity(
    labels: npt.ArrayLike, scores: npt.ArrayLike, sensitivity: float = 0.90
) -> float:
    """The highest threshold whose sensitivity (``score >= t``) is at least ``sensitivity``."""
    if not 0.0 < sensitivity <= 1.0:
        raise TrainingError(f"sensitivity {sensitivity} is not in (0, 1]")
    y, s = _check(labels, scores)
    positives = np.sort(s[y == 1])[::-1]
    # The k-th highest positive score keeps k positives at or above the threshold.
    needed = int(np.ceil(sensitivity * positives.size - 1e-9))
    return float(positives[max(needed, 1) - 1])


def youden_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """The threshold maximising sensitivity + specificity - 1 (ties: the highest threshold)."""
    y, s = _check(labels, scores)
    fpr, tpr, thresholds = roc_curve(y, s)
    j = tpr - fpr
    finite = np.isfinite(thresholds)
    j = np.where(finite, j, -np.inf)
    best = int(np.argmax(j))
    return float(thresholds[best])


def choose_thresholds(labels: npt.ArrayLike, scores: npt.ArrayLike) -> Thresholds:
    """Both operating points of one finding, from validation labels and scores."""
    return Thresholds(
        sens90=threshold_at_sensitivity(labels, scores, 0.90),
        youden=youden_threshold(labels, scores),
    )


def sensitivity_specificity(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float
) -> tuple[float, float]:
    """Sensitivity and specificity of the call ``score >= threshold``."""
    y, s = _check(labels, scores)
    called = s >= threshold
    sensitivity = float(np.mean(called[y == 1]))
    specificity = float(np.mean(~called[y == 0]))
    return sensitivity, specificity


def parse_operating_points(text: str) -> tuple[str | None, dict[str, str]]:
    """``"youden,abnormal=sens90"`` -> ``("youden", {"abnormal": "sens90"})``.

    A bare name is the point of every finding not named; ``FINDING=POINT`` items
    override it. Either part may be absent (``""`` -> ``(None, {})``).

    Raises:
        TrainingError: an unknown point name, two bare names, or a finding named twice.
    """
    default: str | None = None
    overrides: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        finding, sep, point = (part.strip() for part in item.rpartition("="))
        if point not in OPERATING_POINTS:
            raise TrainingError(
                f"operating point {item!r}: {point!r} is not one of {OPERATING_POINTS}"
            )
        if not sep:
            if default is not None:
                raise TrainingError(f"operating points {text!r}: two defaults")
            default = point
        elif not finding or finding in overrides:
            raise TrainingError(f"operating point {item!r}: expected FINDING=POINT, once each")
        else:
            overrides[finding] = point
    return default, overrides


def resolve_operating_points(text: str, finding_ids: Iterable[str]) -> dict[str, str]:
    """Finding id -> operating point for every finding of a bank (default ``sens90``).

    Raises:
        TrainingError: the text does not parse, or names a finding the bank lacks.
    """
    default, overrides = parse_operating_points(text)
    ids = list(finding_ids)
    unknown = sorted(set(overrides) - set(ids))
    if unknown:
        raise TrainingError(f"operating points name findings {unknown} not in the bank {ids}")
    return {fid: overrides.get(fid, default or "sens90") for fid in ids}
