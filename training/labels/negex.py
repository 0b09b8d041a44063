"""A NegEx-style, negation- and hedging-aware rule extractor of finding labels from reports.

Hospitals have reports, not labels. Following NegEx (Chapman et al., 2001), each
sentence is searched for finding terms (:mod:`.vocabulary`) and for negation and
hedging triggers; a mention is negated when a *pre* trigger precedes it within
the scope (up to ``window`` words, cut at terminators such as "but"), or a *post*
trigger follows it within the sentence. Hedged mentions ("possible", "cannot be
excluded") are *uncertain*, counted as present by default (a triage tool prefers
sensitivity) — set ``uncertain_as`` to change that.

The study label ``abnormal`` is 1 when any finding is present.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from training.labels.protocol import ExtractedLabels
from training.labels.vocabulary import EXCLUDING, FINDING_TERMS, compile_terms

PRE_NEGATIONS = (
    r"no",
    r"not",
    r"without",
    r"no evidence of",
    r"no signs? of",
    r"absence of",
    r"negative for",
    r"free of",
    r"rather than",
    r"nor",
    r"resolution of",
)
POST_NEGATIONS = (
    r"(?:is|are|was|were) not (?:seen|identified|present|demonstrated|evident)",
    r"not (?:seen|identified|present|demonstrated)",
    r"(?:is|are|has|have) (?:been )?(?:excluded|ruled out|resolved)",
    r"absent",
)
HEDGES = (
    r"possibl[ey]",
    r"probabl[ey]",
    r"may (?:represent|reflect|be)",
    r"could (?:represent|reflect|be)",
    r"cannot be (?:excluded|ruled out)",
    r"can ?not be (?:excluded|ruled out)",
    r"not excluded",
    r"questionable",
    r"query",
    r"suspicious for",
    r"equivocal",
    r"\?",
)
TERMINATORS = (
    r"but",
    r"however",
    r"although",
    r"though",
    r"apart from",
    r"except",
    r"which",
    r"whereas",
)

_SENTENCE_RE = re.compile(r"(?<=[.;!])\s+|\n+")
_WORD_RE = re.compile(r"[\w?'-]+")


def _alternation(items: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"(?:^|\b|(?<=\s))(?:" + "|".join(items) + r")(?:\b|$)", re.IGNORECASE)


@dataclass
class NegExExtractor:
    """Rule-based labels: finding id -> 1 (present) / 0 (absent), hedging-aware.

    Args:
        window: how many words a pre-negation trigger reaches forward.
        uncertain_as: label of a hedged (and not negated) mention.
        findings: finding ids to extract (default: every id of the vocabulary).
    """

    window: int = 8
    uncertain_as: Literal[0, 1] = 1
    findings: tuple[str, ...] = tuple(FINDING_TERMS)
    name: str = "negex"
    _terms: dict[str, re.Pattern[str]] = field(init=False, repr=False)
    _exclusions: dict[str, re.Pattern[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._terms = compile_terms({f: FINDING_TERMS[f] for f in self.findings})
        self._exclusions = compile_terms({f: v for f, v in EXCLUDING.items() if f in self.findings})
        self._pre = _alternation(PRE_NEGATIONS)
        self._post = _alternation(POST_NEGATIONS)
        self._hedge = _alternation(HEDGES)
        self._term = _alternation(TERMINATORS)

    def _negated(self, sentence: str, start: int, end: int) -> bool:
        before = sentence[:start]
        cut = list(self._term.finditer(before))
        if cut:
            before = before[cut[-1].end() :]
        words = _WORD_RE.findall(before)
        scope = " ".join(words[-self.window :])
        if self._pre.search(scope):
            return True
        after = sentence[end:]
        cut_after = self._term.search(after)
        if cut_after:
            after = after[: cut_after.start()]
        return bool(self._post.search(after))

    def _hedged(self, sentence: str) -> bool:
        return bool(self._hedge.search(sentence))

    def sentence_mentions(self, sentence: str) -> dict[str, str]:
        """finding id -> ``"present"`` / ``"negated"`` / ``"uncertain"`` for one sentence."""
        states: dict[str, str] = {}
        for fid, pattern in self._terms.items():
            exclusion = self._exclusions.get(fid)
            for match in pattern.finditer(sentence):
                if exclusion is not None and exclusion.search(sentence):
                    continue
                if self._negated(sentence, match.start(), match.end()):
                    state = "negated"
                elif self._hedged(sentence):
                    state = "uncertain"
                else:
                    state = "present"
                rank = {"negated": 0, "uncertain": 1, "present": 2}
                if fid not in states or rank[state] > rank[states[fid]]:
                    states[fid] = state
        return states

    def drop_negated(self, text: str, fallback: str = "normal study") -> str:
        """``text`` without the sentences whose every finding mention is negated.

        "No hydrocephalus." or "No restricted diffusion to suggest acute
        infarction." name a finding that is absent; a mean-pooled report
        embedding still moves towards that finding's words. Sentences that
        mention no finding, or at least one present/hedged one, are kept.
        ``fallback`` is returned when nothing is left.
        """
        kept = []
        for sentence in _SENTENCE_RE.split(text):
            sentence = sentence.strip()
            if not sentence:
                continue
            states = self.sentence_mentions(sentence)
            if states and all(state == "negated" for state in states.values()):
                continue
            kept.append(sentence)
        return " ".join(kept) or fallback

    def extract(self, text: str) -> ExtractedLabels:
        """Labels of one report's text (findings and impression together)."""
        present: dict[str, int] = dict.fromkeys(self.findings, 0)
        uncertain: set[str] = set()
        evidence: dict[str, list[str]] = {}
        for sentence in _SENTENCE_RE.split(text):
            sentence = sentence.strip()
            if not sentence:
                continue
            for fid, state in self.sentence_mentions(sentence).items():
                if state == "present":
                    present[fid] = 1
                    uncertain.discard(fid)
                    evidence.setdefault(fid, []).append(sentence)
                elif state == "uncertain" and present[fid] == 0:
                    uncertain.add(fid)
                    present[fid] = self.uncertain_as
                    evidence.setdefault(fid, []).append(sentence)
        present["abnormal"] = int(any(present[f] for f in self.findings))
        return ExtractedLabels(labels=present, uncertain=uncertain, evidence=evidence)
