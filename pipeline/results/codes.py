"""Coded concepts used in the results SR (TID 1500) and heatmap captures.

Standard codes come from pydicom's code dictionary where it has them; the SNOMED CT
finding types pydicom lacks were checked against public terminology mappings
(cerebral infarction 432504007, intracranial meningioma 302820008, hydrocephalus
230745008, demyelinating disease of the CNS 6118003, neoplasm of brain 126952004,
presence 705057003). Concepts with no standard code use the private coding scheme
:data:`PRIVATE_SCHEME`, which every SR declares in its Coding Scheme
Identification Sequence (:func:`coding_scheme_identification`).
"""

from __future__ import annotations

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99NTRIAGE"
"""Coding Scheme Designator of the node's private codes (``99`` prefix: PS3.16 8.2)."""
PRIVATE_SCHEME_NAME = "NeuroTriage Node private codes"
PRIVATE_SCHEME_ORGANIZATION = "NeuroTriage Node open-source project"


def _private(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


def _sct(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator="SCT", meaning=meaning)


# --- Procedure reported (CID 100) and document-level concepts -----------------------------

PROCEDURE_REPORTED = CodedConcept.from_code(codes.LN.MRIUnspecifiedBodyRegion)
"""LOINC 25056-3 "MRI unspecified body region" (CID 100)."""

QUALITATIVE_EVALUATIONS = CodedConcept(
    value="C0034375", scheme_designator="UMLS", meaning="Qualitative Evaluations"
)
"""TID 1500 row 12 container (highdicom does not build it)."""

TRIAGE_RESULT = _private("TRIAGE", "AI triage result")
"""Concept name of the report-level normal/abnormal evaluation and of the triage group."""
NORMAL = CodedConcept.from_code(codes.SCT.Normal)
ABNORMAL = CodedConcept.from_code(codes.SCT.Abnormal)
NORMALITY_UNDETERMINED = CodedConcept.from_code(codes.SCT.NormalityUndetermined)
"""Triage value of a study that could not be analysed."""

ANALYSIS_NOT_PERFORMED = _private("NOTANALYSED", "Reason analysis was not performed")
"""TEXT item (TID 1500 row 13) carrying the reason of a "not analysed" result."""
SEQUENCE_USED = _private("SEQUSED", "Sequence used")
"""TEXT item naming one input sequence and its series: ``"FLAIR (series 1.2.3)"``."""

# --- Measurement group (TID 1501) concepts ----------------------------------------------

SCORE = _sct(codes.SCT.Score.value, "Score")
"""SCT 246262008 "Score": the model's image-text similarity score of the finding."""
THRESHOLD = CodedConcept.from_code(codes.DCM.ThresholdValue)
"""DCM 122411 "Threshold Value": the operating point the present/absent call uses."""
NO_UNITS = CodedConcept.from_code(codes.UCUM.NoUnits)
"""UCUM "1": scores and thresholds are dimensionless."""
PRESENCE = _sct("705057003", "Presence")
"""Concept name of the per-finding qualitative evaluation."""
PRESENT = CodedConcept.from_code(codes.SCT.Present)
ABSENT = CodedConcept.from_code(codes.SCT.Absent)

# --- Finding types -----------------------------------------------------------------------

_CEREBRAL_INFARCTION = _sct("432504007", "Cerebral infarction")
_INTRACRANIAL_HAEMORRHAGE = CodedConcept.from_code(codes.SCT.IntracranialHemorrhage)
_NEOPLASM_OF_BRAIN = _sct("126952004", "Neoplasm of brain")

FINDING_TYPES: dict[str, CodedConcept] = {
    "acute_infarct": _CEREBRAL_INFARCTION,
    "infarct": _CEREBRAL_INFARCTION,
    "stroke": CodedConcept.from_code(codes.SCT.CerebrovascularAccident),
    "haemorrhage": _INTRACRANIAL_HAEMORRHAGE,
    "hemorrhage": _INTRACRANIAL_HAEMORRHAGE,
    "meningioma": _sct("302820008", "Intracranial meningioma"),
    "hydrocephalus": _sct("230745008", "Hydrocephalus"),
    "demyelination": _sct("6118003", "Demyelinating disease of central nervous system"),
    "tumour": _NEOPLASM_OF_BRAIN,
    "tumor": _NEOPLASM_OF_BRAIN,
    "neoplasm": _NEOPLASM_OF_BRAIN,
}
"""Finding id (as in the model's query bank) -> SNOMED CT finding type."""


def finding_type(finding_id: str, display_name: str) -> CodedConcept:
    """The coded finding type of a finding: SNOMED CT where known, else a private code.

    A private code value is the finding id in upper case, cut to the 16 characters
    a Code Value (SH) holds; its meaning is the display name.
    """
    known = FINDING_TYPES.get(finding_id)
    if known is not None:
        return known
    return _private(finding_id.upper()[:16], display_name[:64])


def coding_scheme_identification() -> list[CodingSchemeIdentificationItem]:
    """Coding Scheme Identification Sequence items declaring :data:`PRIVATE_SCHEME`."""
    return [
        CodingSchemeIdentificationItem(
            designator=PRIVATE_SCHEME,
            name=PRIVATE_SCHEME_NAME,
            responsible_organization=PRIVATE_SCHEME_ORGANIZATION,
        )
    ]
