"""The label-extractor interface: rule-based today, an LLM (Park et al.) when one is local.

Park et al.'s AutoLabelClassifier prompts an open LLM in two steps — summarise
the report with respect to a condition and its definition, then answer yes/no;
the probability is the softmax of the "yes"/"no" logits, thresholded at the
equal-error rate chosen on validation. :class:`TwoStepPromptExtractor` implements
that logic over any local model given as a :class:`LanguageModel`; no model is
required (or shipped) by the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ExtractedLabels:
    """Labels of one report: finding id -> 0/1, the uncertain ones, and the evidence."""

    labels: dict[str, int]
    uncertain: set[str] = field(default_factory=set)
    evidence: dict[str, list[str]] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class LabelExtractor(Protocol):
    """Anything that turns a report's text into finding labels."""

    name: str

    def extract(self, text: str) -> ExtractedLabels:
        """Labels of one report."""
        ...


class LanguageModel(Protocol):
    """The two operations the two-step prompting needs from a local LLM."""

    def generate(self, prompt: str) -> str:
        """Free-text completion of ``prompt``."""
        ...

    def yes_no_logits(self, prompt: str) -> tuple[float, float]:
        """Next-token logits of "yes" and "no" after ``prompt``."""
        ...


SUMMARY_PROMPT = (
    "You are a neuroradiologist. Condition: {name}. Definition: {definition}.\n"
    "Report:\n{report}\n"
    "Summarise in one or two sentences what the report says about this condition only."
)
ANSWER_PROMPT = (
    "Condition: {name}. Summary of the report regarding it: {summary}\n"
    "Does the patient have this condition now? Answer yes or no.\nAnswer:"
)


@dataclass
class TwoStepPromptExtractor:
    """Park et al.'s two-step prompting over a local :class:`LanguageModel`.

    Args:
        model: the local LLM.
        definitions: finding id -> (display name, definition).
        thresholds: finding id -> probability threshold (default 0.5; use the
            equal-error-rate threshold chosen on validation).
    """

    model: LanguageModel
    definitions: dict[str, tuple[str, str]]
    thresholds: dict[str, float] = field(default_factory=dict)
    name: str = "two-step-llm"

    def probability(self, text: str, finding: str) -> float:
        """P(yes) for one finding: softmax of the yes/no logits after the summary."""
        display, definition = self.definitions[finding]
        summary = self.model.generate(
            SUMMARY_PROMPT.format(name=display, definition=definition, report=text)
        ).strip()
        yes, no = self.model.yes_no_logits(ANSWER_PROMPT.format(name=display, summary=summary))
        top = max(yes, no)
        e_yes, e_no = math.exp(yes - top), math.exp(no - top)
        return e_yes / (e_yes + e_no)

    def extract(self, text: str) -> ExtractedLabels:
        """Labels of one report (``abnormal`` = any finding present)."""
        probabilities = {f: self.probability(text, f) for f in self.definitions}
        labels = {f: int(p >= self.thresholds.get(f, 0.5)) for f, p in probabilities.items()}
        labels["abnormal"] = int(any(labels.values()))
        return ExtractedLabels(labels=labels, probabilities=probabilities)
