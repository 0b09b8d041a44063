"""Evaluation: AUC with bootstrap CIs, operating points, retrieval P@k, reports and ROC plots."""

from __future__ import annotations

from training.evaluation.metrics import AucResult, auc_mann_whitney, bootstrap_auc, precision_at_k
from training.evaluation.report import ScoredStudies, evaluate_scores, markdown_report, write_report

__all__ = [
    "AucResult",
    "ScoredStudies",
    "auc_mann_whitney",
    "bootstrap_auc",
    "evaluate_scores",
    "markdown_report",
    "precision_at_k",
    "write_report",
]
