"""Classify MR series into :class:`SequenceClass` values, each with its reason.

:func:`classify_series` looks at one series on its own (the ordered rule table
of :mod:`pipeline.series.rules`); :func:`classify_study` then applies what only
the whole study can tell: a T1 series acquired after a series that records a
contrast injection, or a repeat of an earlier T1 with the same protocol, is
post-contrast (T1C) even when no tag or description says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pydicom.dataset import Dataset

from pipeline.series.classes import SequenceClass
from pipeline.series.conditions import ContrastAgent, normalise_description
from pipeline.series.headers import SeriesHeader, header_from_datasets
from pipeline.series.rules import CONTRAST_EVIDENCE, PRECONTRAST_EVIDENCE, RULES, Rule

logger = logging.getLogger(__name__)

_REFORMAT_TOKENS = frozenset({"MPR", "REFORMATTED", "CSA MPR", "MPR THICK", "CSAMPR", "REFORMAT"})
#: A T1 acquired again because of motion says so; it is not a post-contrast repeat.
_REPEAT_WORDS = re.compile(r"\brepeat\w*|\brpt\b|\bredo\b|\brepetition\b|\brescan\b")
_REFORMAT_WORDS = re.compile(r"\bmpr\b|reformat\w*|\bmpr ?(?:tra|cor|sag|ax)\w*|\bmpr\d")


@dataclass(frozen=True)
class Classification:
    """What a series is and why.

    Attributes:
        sequence: the class.
        reason: one sentence naming the rule and the header evidence.
        rule: the name of the rule that matched (``"default"`` when none did).
        evidence: the evidence of each condition of the rule, in order.
        derived: ImageType value 1 is DERIVED.
        reformatted: a multi-planar reformat (ImageType MPR / description).
        contrast_reason: for T1C, why the series is post-contrast.
    """

    sequence: SequenceClass
    reason: str
    rule: str
    evidence: tuple[str, ...] = ()
    derived: bool = False
    reformatted: bool = False
    contrast_reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "sequence": self.sequence.value,
            "reason": self.reason,
            "rule": self.rule,
            "evidence": list(self.evidence),
            "derived": self.derived,
            "reformatted": self.reformatted,
            "contrast_reason": self.contrast_reason,
        }


def _is_reformat(header: SeriesHeader) -> bool:
    if _REFORMAT_TOKENS.intersection(header.image_type):
        return True
    return any(
        _REFORMAT_WORDS.search(normalise_description(text))
        for text in (header.series_description, header.protocol_name)
    )


def _contrast_evidence(header: SeriesHeader) -> str | None:
    """Why a T1 series is post-contrast, or ``None`` (explicit "pre" wins)."""
    if PRECONTRAST_EVIDENCE.check(header):
        return None
    for condition in CONTRAST_EVIDENCE:
        evidence = condition.check(header)
        if evidence:
            return evidence
    return None


def classify_header(header: SeriesHeader, rules: Sequence[Rule] = RULES) -> Classification:
    """Classify one series from its :class:`SeriesHeader` alone."""
    derived = header.is_derived
    reformatted = _is_reformat(header)
    for rule in rules:
        evidence = rule.match(header)
        if evidence is None:
            continue
        sequence = rule.sequence
        reason = f"{rule.why}: {'; '.join(evidence)}"
        contrast_reason = None
        if rule.contrast_check and sequence is SequenceClass.T1:
            contrast_reason = _contrast_evidence(header)
            if contrast_reason:
                sequence = SequenceClass.T1C
                reason = f"{reason}; post-contrast: {contrast_reason}"
        return Classification(
            sequence=sequence,
            reason=reason,
            rule=rule.name,
            evidence=tuple(evidence),
            derived=derived,
            reformatted=reformatted,
            contrast_reason=contrast_reason,
        )
    return Classification(
        sequence=SequenceClass.OTHER,
        reason="no rule matched (no telling tag, timing or description)",
        rule="default",
        derived=derived,
        reformatted=reformatted,
    )


def classify_series(series: SeriesHeader | Sequence[Dataset]) -> Classification:
    """Classify one series.

    Args:
        series: a :class:`SeriesHeader`, or the datasets of one series (headers
            only are enough).

    Returns:
        The :class:`Classification` with its reason. Study-level evidence
        (acquisition order for post-contrast T1) needs :func:`classify_study`.
    """
    header = series if isinstance(series, SeriesHeader) else header_from_datasets(series)
    return classify_header(header)


def _order_key(header: SeriesHeader) -> tuple[float, float]:
    time = header.acquisition_time if header.acquisition_time is not None else float("inf")
    number = float(header.series_number) if header.series_number is not None else float("inf")
    return (time, number)


def _before(a: SeriesHeader, b: SeriesHeader) -> bool:
    """``a`` was acquired before ``b`` (acquisition time, else series number)."""
    if a.acquisition_time is not None and b.acquisition_time is not None:
        return a.acquisition_time < b.acquisition_time
    if a.series_number is not None and b.series_number is not None:
        return a.series_number < b.series_number
    return False


def _same_protocol(a: SeriesHeader, b: SeriesHeader) -> bool:
    """Two T1 acquisitions with the same pulse sequence, plane and timing."""
    if a.plane != b.plane or a.mr_acquisition_type != b.mr_acquisition_type:
        return False
    if a.sequence_name and b.sequence_name and a.sequence_name != b.sequence_name:
        return False
    for x, y in ((a.echo_time, b.echo_time), (a.repetition_time, b.repetition_time)):
        if x is None or y is None:
            continue
        if abs(x - y) > 0.15 * max(x, y):
            return False
    if not a.sequence_name and a.echo_time is None:
        return normalise_description(a.series_description) == normalise_description(
            b.series_description
        )
    return True


def _label(header: SeriesHeader) -> str:
    number = header.series_number if header.series_number is not None else "?"
    return f"series {number} ({header.series_description or header.series_uid})"


def classify_study(headers: Sequence[SeriesHeader]) -> dict[str, Classification]:
    """Classify every series of a study, then apply the study-level contrast rules.

    A T1 series with no contrast evidence of its own, not explicitly "pre", is
    post-contrast when it was acquired after a series whose ContrastBolusAgent
    records an injection, or when it repeats an earlier original T1 acquisition
    with the same protocol (same sequence, plane and timing) and its description
    does not call it a repeat (``repeat``, ``rpt``, ``redo``: a motion re-scan).

    Returns:
        Series Instance UID -> :class:`Classification`.
    """
    result: dict[str, Classification] = {h.series_uid: classify_header(h) for h in headers}
    agent = ContrastAgent()
    injected = sorted(
        (h for h in headers if agent.check(h) and not PRECONTRAST_EVIDENCE.check(h)),
        key=_order_key,
    )
    t1s = sorted(
        (h for h in headers if result[h.series_uid].sequence is SequenceClass.T1),
        key=_order_key,
    )
    for header in t1s:
        current = result[header.series_uid]
        if PRECONTRAST_EVIDENCE.check(header):
            continue
        why: str | None = None
        first_injected = next((h for h in injected if _before(h, header)), None)
        if first_injected is not None:
            why = f"acquired after {_label(first_injected)}, which records contrast"
        elif not current.derived and not _REPEAT_WORDS.search(
            normalise_description(header.description)
        ):
            earlier = next(
                (
                    h
                    for h in t1s
                    if h is not header
                    and _before(h, header)
                    and not result[h.series_uid].derived
                    and result[h.series_uid].sequence is SequenceClass.T1
                    and _same_protocol(h, header)
                ),
                None,
            )
            if earlier is not None:
                why = f"repeats the earlier T1 protocol of {_label(earlier)} (pre-contrast)"
        if why:
            result[header.series_uid] = replace(
                current,
                sequence=SequenceClass.T1C,
                reason=f"{current.reason}; post-contrast by acquisition order: {why}",
                contrast_reason=why,
            )
            logger.debug(
                "study %s: series %s is T1C by order (%s)", header.study_uid, header.series_uid, why
            )
    return result


def classify_datasets_by_series(
    series: Mapping[str, Sequence[Dataset]],
) -> dict[str, Classification]:
    """:func:`classify_study` over datasets grouped by Series Instance UID."""
    return classify_study([header_from_datasets(list(ds)) for ds in series.values()])
