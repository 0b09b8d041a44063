"""Labels from reports: a NegEx-style rule extractor and an interface for LLM extractors."""

from __future__ import annotations

from training.labels.agreement import FindingAgreement, agreement, agreement_table
from training.labels.negex import NegExExtractor
from training.labels.protocol import (
    ExtractedLabels,
    LabelExtractor,
    LanguageModel,
    TwoStepPromptExtractor,
)

__all__ = [
    "ExtractedLabels",
    "FindingAgreement",
    "LabelExtractor",
    "LanguageModel",
    "NegExExtractor",
    "TwoStepPromptExtractor",
    "agreement",
    "agreement_table",
]
