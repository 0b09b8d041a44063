"""Agreement of extracted labels with known truth (synthetic generator or clinician labels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sklearn.metrics import cohen_kappa_score

from dicom_node.errors import TrainingError


@dataclass(frozen=True)
class FindingAgreement:
    """Agreement of one finding's extracted labels with the truth."""

    finding: str
    n: int
    positives: int
    accuracy: float
    sensitivity: float
    specificity: float
    kappa: float


def agreement(
    extracted: Sequence[Mapping[str, int]],
    truth: Sequence[Mapping[str, int]],
    findings: Sequence[str],
) -> list[FindingAgreement]:
    """Per-finding accuracy, sensitivity, specificity and Cohen's kappa."""
    if len(extracted) != len(truth):
        raise TrainingError(f"{len(extracted)} extracted label sets for {len(truth)} truths")
    rows = []
    for f in findings:
        y = [int(t.get(f, 0)) for t in truth]
        p = [int(e.get(f, 0)) for e in extracted]
        pos = sum(y)
        neg = len(y) - pos
        tp = sum(1 for a, b in zip(y, p, strict=True) if a == 1 and b == 1)
        tn = sum(1 for a, b in zip(y, p, strict=True) if a == 0 and b == 0)
        kappa = float(cohen_kappa_score(y, p)) if len(set(y) | set(p)) > 1 else 1.0
        rows.append(
            FindingAgreement(
                finding=f,
                n=len(y),
                positives=pos,
                accuracy=(tp + tn) / len(y) if y else float("nan"),
                sensitivity=tp / pos if pos else float("nan"),
                specificity=tn / neg if neg else float("nan"),
                kappa=kappa,
            )
        )
    return rows


def agreement_table(rows: Sequence[FindingAgreement]) -> str:
    """A Markdown table of :func:`agreement` rows."""
    lines = [
        "| finding | n | positives | accuracy | sensitivity | specificity | kappa |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.finding} | {r.n} | {r.positives} | {r.accuracy:.3f} | {r.sensitivity:.3f} "
        f"| {r.specificity:.3f} | {r.kappa:.3f} |"
        for r in rows
    ]
    return "\n".join(lines)
