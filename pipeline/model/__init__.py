"""Inference side of the learning core: bundles, query bank, zero-shot scoring.

Public API::

    from pipeline.model import load_bundle, ModelBundle, StudyScores
"""

from __future__ import annotations

from pipeline.model.bundle import FindingResult, ModelBundle, StudyScores, load_bundle
from pipeline.model.queries import QueryBank, default_query_bank
from pipeline.model.scoring import ScoringSpec

__all__ = [
    "FindingResult",
    "ModelBundle",
    "QueryBank",
    "ScoringSpec",
    "StudyScores",
    "default_query_bank",
    "load_bundle",
]
