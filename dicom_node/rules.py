"""Analysis rules: which complete studies the node analyses.

The rules are typed data (:class:`dicom_node.config.AnalysisRules`, MONAI
Deploy's series-selector idea without JSON-inside-strings): a study is analysed
when one of its modalities is listed **and** it is of the head/brain, judged by
Body Part Examined (0018,0015) of the study or any series, or by a regular
expression matching Study Description (0008,1030) or a Series Description
(0008,103E). Studies that do not match are still stored; they are marked
``not_analysed`` with the reason returned here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from dicom_node.config import AnalysisRules
from dicom_node.errors import ConfigError
from dicom_node.registry import Study


@dataclass(frozen=True)
class RuleDecision:
    """Whether a study is analysed, and why (the reason is shown in ``status``)."""

    analyse: bool
    reason: str


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(
            f"invalid setting 'analysis_rules.description_patterns': {pattern!r} is not a "
            f"valid regular expression ({exc})"
        ) from None


def _clean(values: Iterable[str | None]) -> list[str]:
    return [value.strip() for value in values if value and value.strip()]


def evaluate_study(study: Study, rules: AnalysisRules) -> RuleDecision:
    """Decide whether ``study`` (with its series loaded) is analysed under ``rules``."""
    series = list(study.series)
    return evaluate(
        modalities=_clean([study.modality, *(s.modality for s in series)]),
        body_parts=_clean([study.body_part, *(s.body_part for s in series)]),
        descriptions=_clean([study.study_description, *(s.series_description for s in series)]),
        rules=rules,
    )


def evaluate(
    *,
    modalities: Iterable[str],
    body_parts: Iterable[str],
    descriptions: Iterable[str],
    rules: AnalysisRules,
) -> RuleDecision:
    """Apply ``rules`` to the attributes of one study.

    Args:
        modalities: Modality (0008,0060) values of the study and its series.
        body_parts: Body Part Examined (0018,0015) values of the study and its series.
        descriptions: Study Description and Series Description values.
        rules: the configured rules.
    """
    seen_modalities = sorted({m.upper() for m in modalities})
    wanted_modalities = {m.upper() for m in rules.modalities}
    if not wanted_modalities.intersection(seen_modalities):
        shown = ", ".join(seen_modalities) or "none"
        return RuleDecision(
            False,
            f"modality {shown} is not analysed (rules.modalities: "
            f"{', '.join(sorted(wanted_modalities))})",
        )
    wanted_parts = {p.upper() for p in rules.body_parts}
    parts = sorted({p.upper() for p in body_parts})
    for part in parts:
        if part in wanted_parts:
            return RuleDecision(True, f"modality {'/'.join(seen_modalities)}, body part {part}")
    descriptions = list(descriptions)
    for pattern in rules.description_patterns:
        regex = _compile(pattern)
        for description in descriptions:
            if regex.search(description):
                return RuleDecision(
                    True,
                    f"modality {'/'.join(seen_modalities)}, description {description!r} "
                    f"matches {pattern!r}",
                )
    shown_parts = ", ".join(parts) or "none"
    return RuleDecision(
        False,
        f"not a head/brain study: body part {shown_parts}, no description matches "
        "rules.description_patterns",
    )
