"""Series classification rules as typed data.

A :class:`Rule` is a named list of :class:`Condition` objects that must all hold,
and the :class:`SequenceClass` it assigns. :data:`RULES` is evaluated in order and
the first rule that matches wins; every condition returns the *evidence* it
found (``"TI 2500 ms in [1400, 3500]"``), so each classification carries its
reason. Nothing here is JSON inside strings: patterns are regular expressions
compiled once, ranges are numbers.

The order encodes what a neuroradiologist trusts most: the image's own
declaration (ImageType LOCALIZER / ADC / SWI / phase), then diffusion b-values,
then the physics of the acquisition (inversion, echo and repetition times),
and only then the free-text SeriesDescription / ProtocolName, which is
"noninformative and ever changing and often misleading".

Sources of the naming conventions: vendor acronym lists (Siemens "MRI
Acronyms": SPACE / CUBE / VISTA, SWI / SWAN / Venous BOLD, FLAIR / Turbo Dark
Fluid / FastFLAIR), dcm2niix's vendor notes (Siemens / GE / Philips / Canon),
heudiconv and dcm2bids heuristics of public projects; see
``tests/data/series_headers/cases.py`` for the table and its citations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.series.classes import SequenceClass
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


@dataclass(frozen=True)
class Rule:
    """All of ``conditions`` hold -> the series is ``sequence``, because ``why``.

    ``contrast_check`` marks T1 rules whose result is refined to T1C when the
    series carries contrast evidence (:data:`CONTRAST_EVIDENCE`).
    """

    name: str
    sequence: SequenceClass
    why: str
    conditions: tuple[Condition, ...]
    contrast_check: bool = False

    def match(self, header: SeriesHeader) -> list[str] | None:
        """The evidence of every condition, or ``None`` when one fails."""
        evidence: list[str] = []
        for condition in self.conditions:
            found = condition.check(header)
            if not found:
                return None
            evidence.append(found)
        return evidence


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _CACHE.get(pattern)
    if compiled is None:
        compiled = _CACHE[pattern] = re.compile(pattern)
    return compiled


def _desc(pattern: str, what: str) -> DescriptionMatches:
    return DescriptionMatches(pattern, what)


def _it(*tokens: str) -> ImageTypeHas:
    return ImageTypeHas(frozenset(tokens))


# --- description vocabularies (normalised text: lower case, separators -> spaces) ---
LOCALIZER_WORDS = (
    r"locali[sz]er|\bloc\b|\d ?pl(?:ane)? ?loc|\b3 ?pl(?:ane)?\b|scout|survey|surview"
    r"|tri ?pilot|\bpilot|aahead|aascout|scanogram|locator|\bplan(?:ning|scan)?\b|smartexam|\bmst\b"
)
#: ImageType values of phase images (Siemens P, GE PHASE, Philips PHASE MAP).
PHASE_TOKENS = ("P", "PHASE", "PHASE MAP")
PHASE_WORDS = r"\bpha\b|\bphase\b|\bpha images|\bphase map|\bfilt phase"
SWI_WORDS = (
    r"\bswi\w*|\bswan\b|\bswip\b|venbold|ven bold|venous bold|susc\w*|\bmag images"
    r"|mip images sw|\bmin ?ip\b|\bmnip\b|\bsw mip\b|\bfsbb\b|\bswi ?mip"
)
PROJECTION_WORDS = r"\bmip\b|\bmaxip\b|\bmip\w* (?:tra|cor|sag|ax)|\bvr\b|rendering"
ANGIO_WORDS = (
    r"\btof\b|\w*angio\w*|\bmra\b|\bmrv\b|venogra\w*|\bpca\b|phase contrast|inhance"
    r"|\bqflow\b|\bflow\b|\bcine\b|time ?slip|\btrance\b|\bfbi\b|\bcemra\b|\bfl3d\b tof"
)
PERFUSION_WORDS = (
    r"perf\w*|\bdsc\b|\bdce\b|\bpwi\b|\br?cbv\b|\br?cbf\b|\bmtt\b|\bttp\b|\btmax\b"
    r"|\bp?c?asl\b|\bpasl\b|\bpcasl\b|\beasl\b|\btgse\b|\bbolus\b|\bdyn\w*|\btwist\b|\btricks\b"
)
FUNCTIONAL_WORDS = r"\bbold\b|fmri|\brest\b|resting|rsfmri|\btask\b|sbref|\bmoco\w*|\bfunc\w*"
SPECTRO_WORDS = r"\bsvs\b|\bcsi\b|spectro\w*|\bmrs\b|\bpress\b|\bsteam\b|\bnaa\b|\bsemi ?laser\b"
CALIBRATION_WORDS = (
    r"field ?map\w*|\w*fieldmap\w*|\bfmap\b|\bb[01] ?map\b|asset ?cal\w*|calibrat\w*|\bcal\b"
    r"|senseref\w*|sense ref|coil ?survey|\bref ?scan\b|\bref head\b|\bprescan\b|\bshim\w*"
    r"|\bnoise\b|\bpure\b"
)
DIFFUSION_MAP_WORDS = (
    r"\bfa\b|\bcol ?fa\b|colou?r ?fa|fractional|\btensor\b|\beadc\b|\bexp\w* ?adc\b"
    r"|exponential|\bmd\b|\brd\b|\bad\b|\bcfa\b|\bdec\b|\bisotropic ?fa\b"
)
RELAXOMETRY_WORDS = (
    r"\bt[12]\*? ?map\w*|\bt[12] ?mapping|\bmapit\b|\bqmap\b|\bmdme\b|\bmagic\b|\bsynthetic\b"
    r"|\br2\*|\br2star\b|relaxometry|\bmyelin\b|\bqsm\b|\bmwf\b|\bmp2rage\w* t1\b"
    r"|\bt1 images\b"
)
DTI_WORDS = (
    r"\bdti\b|\bdmri\b|\bhardi\b|\bmddw\b|\bdir ?(?:[6-9]|\d{2,3})\b|\b(?:[6-9]|\d{2,3}) ?dir\w*"
    r"|\bnoddi\b|multi ?shell|\bmsdwi\b|\btractograph\w*|\bfiber ?track\w*|\bdsi\b"
)
ADC_WORDS = r"\badc\b|apparent diff\w*|\bdadc\b|\bavdc\b"
DWI_WORDS = (
    r"\bdwi\w*|\bdw\b|\bdiff\w*|\bdif\w*|\btrace\w*|\bb ?\d{3,4}\b|\b\d{3,4} ?b\b|\bb\d{3,4}"
    r"|\bresolve\b|readout ?segmented|\brs ?epi\b|\bdwibs\b|\biso ?dwi\b|\bep2d diff"
)
PD_WORDS = r"\bpd\w*|proton density|dual ?echo|\bdual\b|double ?echo|\bpdw\b|\bde\b"
T2STAR_WORDS = (
    r"t2\*|t2 ?star|\bt2 ?ffe\b|\bffe t2\b|\bhemo\w*|\bhaemo\w*|\bgre\b|\bmerge\b|\bmedic\b"
    r"|\bt2 ?gre\b|\bgre t2\b|\bfe t2\b|\bt2 ?fe\b"
)
DIR_WORDS = r"\bdir\b(?! ?\d)|double ?ir\b|double ?inversion|\bdir ?space\b"
STIR_WORDS = r"\bstir\b|\bfaststir\b"
SSFP_WORDS = r"fiesta|\bciss\b|true ?fisp|\btrufi\b|\bb ?ffe\b|balanced|\bcise\b"
FLAIR_WORDS = (
    r"fl(?:a|ai|ia)i?r|flari|falir|fliar|\bflar\b|dark ?fluid|darkfluid|dark fl\w*|\btirm\b"
    r"|fast ?flair|\bspcir\b"
)
T1_FLAIR_WORDS = r"t1\w* ?fl(?:a|ai|ia)i?r|fl(?:a|ai|ia)i?r ?t1\b|\bt1 ?fl\b|\bt1 ?tirm\b"
T2_WORDS = (
    r"(?:\b(?:ax|sag|cor|s)?t2(?!\*)(?:w|wi)?\b(?! ?star)|\bt2(?:w|wi)?(?=[a-z])(?!star))"
    r"|\btse\b|\bfse\b|\bhaste\b|\bssfse\b|\bspace\b|\bcube\b|\bvista\b|\bpropeller\b"
    r"|\bblade\b|\bmultivane\b|\bfrfse\b|\bt2 ?tse\b"
)
T1_WORDS = (
    r"\b(?:ax|sag|cor|s)?t1(?:w|wi)?\b|\bt1(?:w|wi)?(?=[a-z])|mp ?rage|\btfl\b|\bspgr\b|fspgr"
    r"|\bbravo\b|\b3d ?tfe\b|\btfe\b|\bvibe\b|\bflash\b|\bt1 ?ffe\b|ir ?f?spgr|\blava\b"
    r"|\bthrive\b|\bquick ?3d\b|\bfl3d\b|\bmp2rage\b|\bmprage\w*|\bsag t1\w*|\bt1\w+"
)
#: Description evidence that a T1 series was acquired after contrast injection.
CONTRAST_WORDS = (
    r"\+ ?c\b|\bc ?\+|\+ ?gd\w*|\+ ?gad\w*|\+ ?ce\b|\bpost\b(?! ?op)|\bpost(?:contrast|con|gd"
    r"|gad\w*)?\b|\bpost ?(?:contr\w*|gd|gad\w*|km)|\bgad\w*|\bgd\b|\bce\b|contrast|\bkm\b"
    r"|\+ ?km\b|\bmit ?km\b|\bcontr\b|\bgado\w*|\bdotarem\b|\bgadavist\b|\bmultihance\b"
    r"|\bclariscan\b|\bprohance\b|\bmagnevist\b|\bomniscan\b|\bwith contrast|\bw/ ?(?:gd|gad|c)\b"
    r"|\bc\+"
)
#: Description evidence that a T1 series is pre-contrast.
PRECONTRAST_WORDS = (
    r"\bpre\b|\bpre ?contr\w*|\bprecon\w*|\bpre ?gd\b|\bpre ?gad\w*|non ?contrast|\bw/o\b"
    r"|without|\bnativ\w*|\bno contrast|\bplain\b|\bunenhanced\b|\bnon ?enh\w*|\bohne km\b"
    r"|\bnc\b"
)

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


#: Evidence that a T1 series is post-contrast (any one), unless PRECONTRAST holds.
CONTRAST_EVIDENCE: tuple[Condition, ...] = (
    ContrastAgent(),
    _desc(CONTRAST_WORDS, "post-contrast"),
)
#: Evidence that a T1 series is explicitly pre-contrast.
PRECONTRAST_EVIDENCE = _desc(PRECONTRAST_WORDS, "pre-contrast")

_SE_ONLY = (ScanningHas("SE"), Not(ScanningHas("IR")), Not(ScanningHas("EP")))
_GR_ONLY = (ScanningHas("GR"), Not(ScanningHas("EP")), Not(ScanningHas("IR")))

O = SequenceClass.OTHER  # noqa: E741 - short alias for the long table below

#: The ordered rule table; the first match wins.
RULES: tuple[Rule, ...] = (
    # 1. what the images declare about themselves
    Rule("not-mr-image", O, "not an MR image", (NotMRImage(),)),
    Rule(
        "localizer-image-type",
        SequenceClass.LOCALIZER,
        "ImageType declares a localizer",
        (_it("LOCALIZER"),),
    ),
    Rule(
        "localizer-multi-plane",
        SequenceClass.LOCALIZER,
        "a multi-planar series is a localizer",
        (MultiPlane(),),
    ),
    Rule("calibration", O, "a calibration / field-map scan", (_desc(CALIBRATION_WORDS, "calib"),)),
    Rule(
        "localizer-description",
        SequenceClass.LOCALIZER,
        "named as a localizer",
        (_desc(LOCALIZER_WORDS, "localizer"),),
    ),
    Rule("screen-save", O, "a screen save or report", (_it("SCREEN SAVE", "CSA REPORT"),)),
    Rule(
        "swi-phase",
        SequenceClass.SWI,
        "phase image of an SWI acquisition (SWI family; the selector never picks phase)",
        (
            AnyOf((_it(*PHASE_TOKENS), _desc(PHASE_WORDS, "phase"))),
            AnyOf((_it("SWI"), _desc(SWI_WORDS, "SWI"), SequenceNameMatches(r"swi", "SWI"))),
        ),
    ),
    Rule("phase-image", O, "a phase image", (_it(*PHASE_TOKENS),)),
    Rule("phase-description", O, "a phase image", (_desc(PHASE_WORDS, "phase"),)),
    # 2. susceptibility weighting (before projections: minIP belongs to SWI)
    Rule("swi-image-type", SequenceClass.SWI, "ImageType declares SWI", (_it("SWI", "MNIP"),)),
    Rule("swi-description", SequenceClass.SWI, "named as SWI", (_desc(SWI_WORDS, "SWI"),)),
    Rule(
        "projection",
        O,
        "a projection (MIP / rendering), not a slice stack",
        (AnyOf((_it("MIP", "MAXIP", "PROJECTION IMAGE"), _desc(PROJECTION_WORDS, "MIP"))),),
    ),
    # 3. families the models do not use
    Rule(
        "angiography",
        O,
        "angiography / flow",
        (
            AnyOf(
                (
                    AngioFlag(),
                    _desc(ANGIO_WORDS, "angiography"),
                    SequenceNameMatches(r"fl3d1r|tof", "TOF"),
                )
            ),
        ),
    ),
    Rule(
        "spectroscopy",
        O,
        "spectroscopy",
        (AnyOf((_desc(SPECTRO_WORDS, "spectroscopy"), SequenceNameMatches(r"svs|csi", "MRS"))),),
    ),
    Rule("perfusion", O, "perfusion", (_desc(PERFUSION_WORDS, "perfusion"),)),
    Rule("functional", O, "functional MRI", (_desc(FUNCTIONAL_WORDS, "fMRI"),)),
    Rule(
        "diffusion-map",
        O,
        "a diffusion map other than ADC (FA, colour FA, tensor, exponential ADC)",
        (
            AnyOf(
                (
                    _it("FA", "COLFA", "TENSOR", "EADC", "EXP", "TRACE_EXP", "EXPADC"),
                    _desc(DIFFUSION_MAP_WORDS, "a diffusion map"),
                )
            ),
        ),
    ),
    Rule("relaxometry", O, "a quantitative map", (_desc(RELAXOMETRY_WORDS, "a relaxometry map"),)),
    # 4. diffusion
    Rule("adc-image-type", SequenceClass.ADC, "ImageType declares ADC", (_it("ADC"),)),
    Rule("adc-description", SequenceClass.ADC, "named as ADC", (_desc(ADC_WORDS, "ADC"),)),
    Rule(
        "dti-raw",
        O,
        "a multi-direction DTI acquisition, not a clinical trace",
        (
            _desc(DTI_WORDS, "DTI"),
            Not(_it("TRACEW", "TRACE")),
            Not(_desc(r"\btrace\w*", "trace")),
        ),
    ),
    Rule(
        "dwi-b-values",
        SequenceClass.DWI,
        "diffusion-weighted (b-values in the tags)",
        (MaxBValue(300.0),),
    ),
    Rule(
        "dwi-image-type",
        SequenceClass.DWI,
        "ImageType declares diffusion",
        (_it("DIFFUSION", "TRACEW", "TRACE", "ISODWI"),),
    ),
    Rule(
        "dwi-directionality",
        SequenceClass.DWI,
        "diffusion directionality recorded",
        (HasDirectionality(),),
    ),
    Rule(
        "dwi-sequence-name",
        SequenceClass.DWI,
        "a diffusion pulse sequence",
        (SequenceNameMatches(r"ep_b\d+|re_b\d+|ep2d_diff|epse_diff|dwi", "diffusion EPI"),),
    ),
    Rule("dwi-description", SequenceClass.DWI, "named as DWI", (_desc(DWI_WORDS, "DWI"),)),
    # 5. physics of the acquisition
    Rule("double-ir", O, "double inversion recovery", (_desc(DIR_WORDS, "DIR"),)),
    Rule(
        "flair-inversion",
        SequenceClass.FLAIR,
        "long-TI inversion recovery with long TE nulls fluid (FLAIR)",
        (InRange("inversion_time", 1400, 3600), InRange("echo_time", 50)),
    ),
    Rule(
        "epi-no-diffusion",
        O,
        "EPI without diffusion weighting (perfusion / fMRI / unknown)",
        (ScanningHas("EP"),),
    ),
    Rule(
        "t1-inversion",
        SequenceClass.T1,
        "short-TE inversion recovery at a T1 inversion time (MPRAGE, T1-FLAIR, IR-SPGR)",
        (InRange("inversion_time", 300, 1400), InRange("echo_time", high=30)),
        contrast_check=True,
    ),
    Rule(
        "stir",
        O,
        "short-TI inversion recovery (STIR)",
        (InRange("inversion_time", 50, 300),),
    ),
    Rule("stir-description", O, "named as STIR", (_desc(STIR_WORDS, "STIR"),)),
    Rule("ssfp", O, "balanced steady-state free precession", (_desc(SSFP_WORDS, "bSSFP"),)),
    Rule(
        "t2-spin-echo",
        SequenceClass.T2,
        "spin echo with long TE and long TR (T2-weighted)",
        (*_SE_ONLY, InRange("echo_time", 70), Not(InRange("repetition_time", high=1500))),
    ),
    Rule(
        "pd-spin-echo",
        O,
        "spin echo with short TE and long TR (proton density)",
        (*_SE_ONLY, InRange("echo_time", high=45), InRange("repetition_time", 1500)),
    ),
    Rule(
        "t1-spin-echo",
        SequenceClass.T1,
        "spin echo with short TE and short TR (T1-weighted)",
        (*_SE_ONLY, InRange("echo_time", high=30), InRange("repetition_time", high=1500)),
        contrast_check=True,
    ),
    Rule(
        "t2star-gradient-echo",
        O,
        "gradient echo with long TE (T2*-weighted, not SWI)",
        (*_GR_ONLY, InRange("echo_time", 12)),
    ),
    Rule(
        "t1-gradient-echo",
        SequenceClass.T1,
        "spoiled gradient echo with short TE (T1-weighted)",
        (*_GR_ONLY, InRange("echo_time", high=12), Not(InRange("repetition_time", 1500))),
        contrast_check=True,
    ),
    # 6. the description, when the physics is missing or inconclusive
    Rule("pd-description", O, "named as proton density", (_desc(PD_WORDS, "PD"),)),
    Rule("t2star-description", O, "named as T2* GRE", (_desc(T2STAR_WORDS, "T2*"),)),
    Rule(
        "t1-flair-description",
        SequenceClass.T1,
        "named as T1-FLAIR",
        (_desc(T1_FLAIR_WORDS, "T1-FLAIR"),),
        contrast_check=True,
    ),
    Rule(
        "flair-description", SequenceClass.FLAIR, "named as FLAIR", (_desc(FLAIR_WORDS, "FLAIR"),)
    ),
    Rule(
        "t1-description",
        SequenceClass.T1,
        "named as T1",
        (_desc(T1_WORDS, "T1"),),
        contrast_check=True,
    ),
    Rule("t2-description", SequenceClass.T2, "named as T2", (_desc(T2_WORDS, "T2"),)),
    Rule(
        "t1-contrast-description",
        SequenceClass.T1,
        "named only as post-contrast (a post-contrast series is T1-weighted)",
        (_desc(CONTRAST_WORDS, "post-contrast"), Not(_desc(PRECONTRAST_WORDS, "pre"))),
        contrast_check=True,
    ),
)


def rule_names(rules: Sequence[Rule] = RULES) -> list[str]:
    """The names of ``rules`` in evaluation order (they are unique)."""
    return [rule.name for rule in rules]
