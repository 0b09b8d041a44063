"""The text-only ceiling: zero-shot AUC when the "image" embedding IS the report embedding.

Image encoders are trained to regress report embeddings; if they did so
perfectly, a study would score exactly as its own report does against the
query bank. Scoring the reports themselves therefore bounds what the image side
can reach with this report encoder and query bank, and tells a weak report
encoder (or bad query sentences) apart from a weak image encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.model.queries import QueryBank, default_query_bank
from pipeline.model.scoring import EmbeddedQueries, ScoringSpec, finding_scores
from pipeline.model.text_encoder import ReportEncoder
from training.data.reports import ReportRecord, TargetText, target_text
from training.evaluation.metrics import auc_mann_whitney
from training.labels.negex import NegExExtractor


def report_zero_shot_auc(
    encoder: ReportEncoder,
    reports: Sequence[ReportRecord],
    bank: QueryBank | None = None,
    spec: ScoringSpec | None = None,
    target: TargetText = "report",
) -> dict[str, float]:
    """finding id -> AUC of scoring each report's own embedding against the bank.

    Labels are the reports' known labels when every report has them, else the
    NegEx extractor's; ``abnormal`` defaults to "any finding". ``target`` picks the
    text embedded for each report, as the image encoders' target does.
    """
    bank = bank or default_query_bank()
    spec = spec or ScoringSpec()
    texts = [r.text for r in reports]
    if all(r.labels for r in reports):
        rows = [dict(r.labels) for r in reports]
    else:
        extractor = NegExExtractor()
        rows = [extractor.extract(t).labels for t in texts]
    queries = EmbeddedQueries(
        normal=encoder.encode(bank.normal_references),
        findings={f.id: encoder.encode(f.sentences) for f in bank.findings},
        bank_ids=tuple(bank.finding_ids),
    )
    embedded = encoder.encode([target_text(r, target) for r in reports])
    scores = finding_scores(embedded, queries, spec)
    out: dict[str, float] = {}
    for fid, values in scores.items():
        if fid == "abnormal":
            y = [r.get(fid, int(any(v for k, v in r.items() if k != fid))) for r in rows]
        else:
            y = [int(r.get(fid, 0)) for r in rows]
        out[fid] = auc_mann_whitney(np.asarray(y), values.numpy())
    return out
