"""Embedding cached studies with image encoders and scoring them (validation and test).

Studies may lack some sequences; they are grouped by the set of sequences they
have, and each group is fused over its own sequences (as at inference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from dicom_node.errors import TrainingError
from pipeline.model.queries import TRIAGE_FINDING
from pipeline.model.scoring import EmbeddedQueries, ScoringSpec, fused_scores
from training.data.cache import CachedStudy, StudyCache
from training.labels.negex import NegExExtractor

EncodeFn = Callable[[str, Tensor], Tensor]
"""(sequence, (B,1,D,H,W) batch) -> (B, E) unit embeddings"""
LabelSource = Literal["truth", "reports"]


@torch.no_grad()
def embed_studies(
    encode: EncodeFn,
    cache: StudyCache,
    studies: Sequence[CachedStudy],
    sequences: Sequence[str],
    batch_size: int = 8,
) -> list[dict[str, Tensor]]:
    """Per study, sequence -> unit embedding (E,), for the ``sequences`` it has."""
    out: list[dict[str, Tensor]] = [{} for _ in studies]
    for seq in sequences:
        idx = [i for i, s in enumerate(studies) if seq in s.sequences]
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            batch = torch.stack([cache.load_tensor(studies[i], seq) for i in chunk])
            embeddings = encode(seq, batch)
            for row, i in enumerate(chunk):
                out[i][seq] = embeddings[row]
    return out


def score_studies(
    embeddings: Sequence[Mapping[str, Tensor]],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
) -> dict[str, np.ndarray]:
    """finding id -> (N,) exam scores; studies without any embedding get NaN."""
    n = len(embeddings)
    scores = {fid: np.full(n, np.nan) for fid in queries.findings}
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, e in enumerate(embeddings):
        if e:
            groups.setdefault(tuple(sorted(e)), []).append(i)
    for seqs, members in groups.items():
        batch = {seq: torch.stack([embeddings[i][seq] for i in members]) for seq in seqs}
        fused = fused_scores(batch, queries, spec)
        for fid, values in fused.exam.items():
            scores[fid][members] = values.numpy()
    return scores


def study_labels(
    studies: Sequence[CachedStudy], findings: Sequence[str], source: LabelSource = "truth"
) -> dict[str, np.ndarray]:
    """finding id -> (N,) labels, from the generator's truth or extracted from the reports.

    ``abnormal`` is the study's own label when the truth has one, else "any finding".
    """
    if source == "truth":
        rows = [dict(s.labels) for s in studies]
        missing = [s.key for s, r in zip(studies, rows, strict=True) if not r]
        if missing:
            raise TrainingError(
                f"{len(missing)} studies have no truth labels (e.g. {missing[0]}); "
                "use labels from reports"
            )
    elif source == "reports":
        extractor = NegExExtractor()
        rows = [extractor.extract(s.report.text).labels for s in studies]
    else:
        raise TrainingError(f"label source {source!r} is not 'truth' or 'reports'")
    labels: dict[str, np.ndarray] = {}
    for fid in findings:
        if fid == TRIAGE_FINDING:
            values = [
                r[fid] if fid in r else int(any(v for k, v in r.items() if k != fid)) for r in rows
            ]
        else:
            values = [int(r.get(fid, 0)) for r in rows]
        labels[fid] = np.asarray(values, dtype=np.int64)
    return labels
