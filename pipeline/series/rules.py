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

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.series import vocabulary as words
from pipeline.series.classes import SequenceClass
from pipeline.series.conditions import (
    AngioFlag,
    AnyOf,
    Condition,
    ContrastAgent,
    DescriptionMatches,
    HasDirectionality,
    ImageTypeHas,
    InRange,
    MaxBValue,
    MultiPlane,
    Not,
    NotMRImage,
    ScanningHas,
    SequenceNameMatches,
)
from pipeline.series.headers import SeriesHeader
from pipeline.series.vocabulary import PHASE_TOKENS


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


def _desc(pattern: str, what: str) -> DescriptionMatches:
    return DescriptionMatches(pattern, what)


def _it(*tokens: str) -> ImageTypeHas:
    return ImageTypeHas(frozenset(tokens))


#: Evidence that a T1 series is post-contrast (any one), unless PRECONTRAST holds.
CONTRAST_EVIDENCE: tuple[Condition, ...] = (
    ContrastAgent(),
    _desc(words.CONTRAST_WORDS, "post-contrast"),
)
#: Evidence that a T1 series is explicitly pre-contrast.
PRECONTRAST_EVIDENCE = _desc(words.PRECONTRAST_WORDS, "pre-contrast")

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
    Rule(
        "calibration",
        O,
        "a calibration / field-map scan",
        (_desc(words.CALIBRATION_WORDS, "calib"),),
    ),
    Rule(
        "localizer-description",
        SequenceClass.LOCALIZER,
        "named as a localizer",
        (_desc(words.LOCALIZER_WORDS, "localizer"),),
    ),
    Rule("screen-save", O, "a screen save or report", (_it("SCREEN SAVE", "CSA REPORT"),)),
    Rule(
        "swi-phase",
        SequenceClass.SWI,
        "phase image of an SWI acquisition (SWI family; the selector never picks phase)",
        (
            AnyOf((_it(*PHASE_TOKENS), _desc(words.PHASE_WORDS, "phase"))),
            AnyOf((_it("SWI"), _desc(words.SWI_WORDS, "SWI"), SequenceNameMatches(r"swi", "SWI"))),
        ),
    ),
    Rule("phase-image", O, "a phase image", (_it(*PHASE_TOKENS),)),
    Rule("phase-description", O, "a phase image", (_desc(words.PHASE_WORDS, "phase"),)),
    # 2. susceptibility weighting (before projections: minIP belongs to SWI)
    Rule("swi-image-type", SequenceClass.SWI, "ImageType declares SWI", (_it("SWI", "MNIP"),)),
    Rule("swi-description", SequenceClass.SWI, "named as SWI", (_desc(words.SWI_WORDS, "SWI"),)),
    Rule(
        "projection",
        O,
        "a projection (MIP / rendering), not a slice stack",
        (AnyOf((_it("MIP", "MAXIP", "PROJECTION IMAGE"), _desc(words.PROJECTION_WORDS, "MIP"))),),
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
                    _desc(words.ANGIO_WORDS, "angiography"),
                    SequenceNameMatches(r"fl3d1r|tof", "TOF"),
                )
            ),
        ),
    ),
    Rule(
        "spectroscopy",
        O,
        "spectroscopy",
        (
            AnyOf(
                (_desc(words.SPECTRO_WORDS, "spectroscopy"), SequenceNameMatches(r"svs|csi", "MRS"))
            ),
        ),
    ),
    Rule("perfusion", O, "perfusion", (_desc(words.PERFUSION_WORDS, "perfusion"),)),
    Rule("functional", O, "functional MRI", (_desc(words.FUNCTIONAL_WORDS, "fMRI"),)),
    Rule(
        "diffusion-map",
        O,
        "a diffusion map other than ADC (FA, colour FA, tensor, exponential ADC)",
        (
            AnyOf(
                (
                    _it("FA", "COLFA", "TENSOR", "EADC", "EXP", "TRACE_EXP", "EXPADC"),
                    _desc(words.DIFFUSION_MAP_WORDS, "a diffusion map"),
                )
            ),
        ),
    ),
    Rule(
        "relaxometry",
        O,
        "a quantitative map",
        (_desc(words.RELAXOMETRY_WORDS, "a relaxometry map"),),
    ),
    # 4. diffusion
    Rule("adc-image-type", SequenceClass.ADC, "ImageType declares ADC", (_it("ADC"),)),
    Rule("adc-description", SequenceClass.ADC, "named as ADC", (_desc(words.ADC_WORDS, "ADC"),)),
    Rule(
        "dti-raw",
        O,
        "a multi-direction DTI acquisition, not a clinical trace",
        (
            _desc(words.DTI_WORDS, "DTI"),
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
    Rule("dwi-description", SequenceClass.DWI, "named as DWI", (_desc(words.DWI_WORDS, "DWI"),)),
    # 5. physics of the acquisition
    Rule("double-ir", O, "double inversion recovery", (_desc(words.DIR_WORDS, "DIR"),)),
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
    Rule("stir-description", O, "named as STIR", (_desc(words.STIR_WORDS, "STIR"),)),
    Rule("ssfp", O, "balanced steady-state free precession", (_desc(words.SSFP_WORDS, "bSSFP"),)),
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
    Rule("pd-description", O, "named as proton density", (_desc(words.PD_WORDS, "PD"),)),
    Rule("t2star-description", O, "named as T2* GRE", (_desc(words.T2STAR_WORDS, "T2*"),)),
    Rule(
        "t1-flair-description",
        SequenceClass.T1,
        "named as T1-FLAIR",
        (_desc(words.T1_FLAIR_WORDS, "T1-FLAIR"),),
        contrast_check=True,
    ),
    Rule(
        "flair-description",
        SequenceClass.FLAIR,
        "named as FLAIR",
        (_desc(words.FLAIR_WORDS, "FLAIR"),),
    ),
    Rule(
        "t1-description",
        SequenceClass.T1,
        "named as T1",
        (_desc(words.T1_WORDS, "T1"),),
        contrast_check=True,
    ),
    Rule("t2-description", SequenceClass.T2, "named as T2", (_desc(words.T2_WORDS, "T2"),)),
    Rule(
        "t1-contrast-description",
        SequenceClass.T1,
        "named only as post-contrast (a post-contrast series is T1-weighted)",
        (_desc(words.CONTRAST_WORDS, "post-contrast"), Not(_desc(words.PRECONTRAST_WORDS, "pre"))),
        contrast_check=True,
    ),
)


def rule_names(rules: Sequence[Rule] = RULES) -> list[str]:
    """The names of ``rules`` in evaluation order (they are unique)."""
    return [rule.name for rule in rules]
