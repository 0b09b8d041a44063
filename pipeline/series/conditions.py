"""The conditions a classification rule is made of (typed, each returning its evidence).

Each :class:`Condition` tests one thing on a :class:`SeriesHeader` and returns
the evidence it found (``"TI 2500 ms in [1400, 3600)"``) or ``None``; rules
(:mod:`pipeline.series.rules`) combine them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.series.headers import SeriesHeader

#: SOP classes of images that are not MR acquisitions (secondary capture family).
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
#: MR Spectroscopy Storage.
_MR_SPECTROSCOPY = "1.2.840.10008.5.1.4.1.1.4.2"

NumericAttribute = Literal["echo_time", "repetition_time", "inversion_time", "flip_angle"]

_UNITS = {"echo_time": "ms", "repetition_time": "ms", "inversion_time": "ms", "flip_angle": "deg"}
_SHORT = {"echo_time": "TE", "repetition_time": "TR", "inversion_time": "TI", "flip_angle": "flip"}


def normalise_description(text: str) -> str:
    """Lower-case a description and turn separators (``_ - . , : ( ) =``) into spaces."""
    lowered = text.lower()
    spaced = re.sub(r"[_\-.,:;()\[\]{}=|#]", " ", lowered)
    return " ".join(spaced.split())


class Condition:
    """One test on a :class:`SeriesHeader`; :meth:`check` returns evidence or ``None``."""

    label: str = "condition"

    def check(self, header: SeriesHeader) -> str | None:
        """The evidence that the condition holds for ``header``, or ``None``."""
        raise NotImplementedError


@dataclass(frozen=True)
class ImageTypeHas(Condition):
    """ImageType (0008,0008) (or FrameType) contains one of ``tokens``."""

    tokens: frozenset[str]

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"ImageType has one of {sorted(self.tokens)}"

    def check(self, header: SeriesHeader) -> str | None:
        found = [t for t in header.image_type if t in self.tokens]
        return f"ImageType contains {found[0]}" if found else None


@dataclass(frozen=True)
class DescriptionMatches(Condition):
    """SeriesDescription or ProtocolName (normalised) matches ``pattern``."""

    pattern: str
    what: str

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"description says {self.what}"

    def check(self, header: SeriesHeader) -> str | None:
        for text in (header.series_description, header.protocol_name):
            match = _compiled(self.pattern).search(normalise_description(text))
            if match:
                return f"description {text!r} says {self.what} ({match.group(0).strip()!r})"
        return None


@dataclass(frozen=True)
class SequenceNameMatches(Condition):
    """SequenceName (0018,0024) / PulseSequenceName (0018,9005) matches ``pattern``."""

    pattern: str
    what: str

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"SequenceName is {self.what}"

    def check(self, header: SeriesHeader) -> str | None:
        if header.sequence_name and _compiled(self.pattern).search(header.sequence_name.lower()):
            return f"SequenceName {header.sequence_name!r} is {self.what}"
        return None


@dataclass(frozen=True)
class ScanningHas(Condition):
    """ScanningSequence (0018,0020) contains ``token`` (SE, GR, IR, EP, RM)."""

    token: str

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{self.token} in ScanningSequence"

    def check(self, header: SeriesHeader) -> str | None:
        if self.token in header.scanning_sequence:
            joined = "\\".join(header.scanning_sequence)
            return (
                f"ScanningSequence {joined}"
                if joined == self.token
                else (f"{self.token} in ScanningSequence {joined}")
            )
        return None


@dataclass(frozen=True)
class InRange(Condition):
    """A timing attribute is known and lies in ``[low, high)``."""

    attribute: NumericAttribute
    low: float = float("-inf")
    high: float = float("inf")

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{_SHORT[self.attribute]} {self._interval()}"

    def check(self, header: SeriesHeader) -> str | None:
        value = getattr(header, self.attribute)
        if value is None or not (self.low <= value < self.high):
            return None
        return f"{_SHORT[self.attribute]} {value:g} {_UNITS[self.attribute]} {self._interval()}"

    def _interval(self) -> str:
        if self.low == float("-inf"):
            return f"< {self.high:g}"
        if self.high == float("inf"):
            return f">= {self.low:g}"
        return f"in [{self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Known(Condition):
    """A timing attribute is present in the header."""

    attribute: NumericAttribute

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"{_SHORT[self.attribute]} known"

    def check(self, header: SeriesHeader) -> str | None:
        value = getattr(header, self.attribute)
        return None if value is None else f"{_SHORT[self.attribute]} {value:g}"


@dataclass(frozen=True)
class MaxBValue(Condition):
    """The largest b-value found in the tags is at least ``low`` s/mm²."""

    low: float

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"b-value >= {self.low:g}"

    def check(self, header: SeriesHeader) -> str | None:
        if header.b_values and max(header.b_values) >= self.low:
            values = ", ".join(f"{b:g}" for b in header.b_values)
            return f"diffusion b-values {values} s/mm² in the tags"
        return None


@dataclass(frozen=True)
class HasDirectionality(Condition):
    """DiffusionDirectionality (0018,9075) is present (Enhanced MR / Canon)."""

    label = "DiffusionDirectionality present"

    def check(self, header: SeriesHeader) -> str | None:
        if header.diffusion_directionality:
            return f"DiffusionDirectionality {'/'.join(header.diffusion_directionality)}"
        return None


@dataclass(frozen=True)
class MultiPlane(Condition):
    """The images of the series lie in more than one plane."""

    label = "images in several planes"

    def check(self, header: SeriesHeader) -> str | None:
        if len(header.planes) > 1:
            return f"images in {len(header.planes)} planes ({', '.join(header.planes)})"
        return None


@dataclass(frozen=True)
class AngioFlag(Condition):
    """AngioFlag (0018,0025) is Y."""

    label = "AngioFlag Y"

    def check(self, header: SeriesHeader) -> str | None:
        return "AngioFlag is Y" if header.angio_flag else None


@dataclass(frozen=True)
class NotMRImage(Condition):
    """Modality is not MR, or the SOP class is secondary capture / MR spectroscopy."""

    label = "not an MR image"

    def check(self, header: SeriesHeader) -> str | None:
        if header.modality and header.modality != "MR":
            return f"Modality is {header.modality}"
        if header.sop_class_uid.startswith(_SECONDARY_CAPTURE_PREFIX):
            return f"SOP class {header.sop_class_uid} is secondary capture"
        if header.sop_class_uid == _MR_SPECTROSCOPY:
            return "SOP class is MR Spectroscopy"
        return None


@dataclass(frozen=True)
class Not(Condition):
    """Holds when ``condition`` does not."""

    condition: Condition

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"not {self.condition.label}"

    def check(self, header: SeriesHeader) -> str | None:
        if self.condition.check(header):
            return None
        return f"not {self.condition.label}"


@dataclass(frozen=True)
class AnyOf(Condition):
    """Holds when one of ``conditions`` does (the first one's evidence is kept)."""

    conditions: tuple[Condition, ...]

    @property
    def label(self) -> str:  # type: ignore[override]
        return " or ".join(c.label for c in self.conditions)

    def check(self, header: SeriesHeader) -> str | None:
        for condition in self.conditions:
            evidence = condition.check(header)
            if evidence:
                return evidence
        return None


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _CACHE.get(pattern)
    if compiled is None:
        compiled = _CACHE[pattern] = re.compile(pattern)
    return compiled


_NO_AGENT = {"", "NONE", "NO", "N", "N/A", "NA", "NIL", "0", "-"}


@dataclass(frozen=True)
class ContrastAgent(Condition):
    """ContrastBolusAgent (0018,0010) or its Enhanced sequence names an agent."""

    label = "ContrastBolusAgent present"

    def check(self, header: SeriesHeader) -> str | None:
        agent = header.contrast_agent.strip()
        if agent.upper() in _NO_AGENT:
            return None
        return f"ContrastBolusAgent is {agent!r}"
