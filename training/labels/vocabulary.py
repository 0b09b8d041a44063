"""The finding vocabulary of the rule-based label extractor: terms per finding id.

Patterns are case-insensitive regular expressions matched within one sentence.
``EXCLUDING`` lists modifiers that make a mention *not* count for that finding in
the same sentence (e.g. a "chronic" infarct is not an acute infarct).
"""

from __future__ import annotations

import re

FINDING_TERMS: dict[str, tuple[str, ...]] = {
    "acute_infarct": (
        r"infarct\w*",
        r"isch(?:a)?emi\w*",
        r"stroke",
        r"restricted diffusion",
        r"diffusion restriction",
    ),
    "haemorrhage": (
        r"ha?emorrhag\w*",
        r"ha?ematoma\w*",
        r"blood products",
        r"bleed\w*",
        r"microbleed\w*",
    ),
    "meningioma": (
        r"meningioma\w*",
        r"extra-?\s?axial (?:mass|lesion|tumou?r)\w*",
        r"dural[- ]based (?:mass|lesion)\w*",
    ),
    "hydrocephalus": (
        r"hydrocephal\w*",
        r"ventriculomegaly",
        r"(?:dilated|enlarged|dilatation of the|enlargement of the)"
        r" (?:lateral |third )?ventricles?",
    ),
    "demyelination": (
        r"demyelinat\w*",
        r"multiple sclerosis",
        r"\bms\b",
        r"plaques?",
        r"white matter lesions?",
    ),
    "tumour": (
        r"tumou?r\w*",
        r"neoplas\w*",
        r"gliom\w*",
        r"glioblastom\w*",
        r"metasta\w*",
        r"intra-?\s?axial (?:mass|lesion)\w*",
        r"\bmass\b(?! effect)",
    ),
}

EXCLUDING: dict[str, tuple[str, ...]] = {
    "acute_infarct": (r"\bchronic\b", r"\bold\b", r"\bestablished\b", r"\bremote\b"),
    "tumour": (r"extra-?\s?axial", r"meningioma", r"dural[- ]based"),
    "demyelination": (r"\bsmall vessel\b", r"\bmicroangiopath\w*"),
}


def compile_terms(terms: dict[str, tuple[str, ...]]) -> dict[str, re.Pattern[str]]:
    """One alternation pattern per finding id."""
    return {
        fid: re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)
        for fid, patterns in terms.items()
    }
