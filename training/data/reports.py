"""Reading report archives: CSV or JSONL, keyed by accession number or Study Instance UID.

Hospitals export reports in many shapes. A record needs a key (``accession`` /
``accession_number`` / ``AccessionNumber`` or ``study_uid`` /
``study_instance_uid`` / ``StudyInstanceUID``) and either the two sections
(``findings`` and ``impression`` / ``conclusion`` / ``summary``) or one ``report``
/ ``text`` field, which is split at a heading such as ``IMPRESSION:``.
Optional fields kept: ``patient_key`` (any pseudonymous patient id, used only for
patient-level splits), ``site`` and ``labels`` (a dict finding -> 0/1 for synthetic
data with known truth).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dicom_node.errors import TrainingError

_ACCESSION_KEYS = ("accession", "accession_number", "AccessionNumber")
_UID_KEYS = ("study_uid", "study_instance_uid", "StudyInstanceUID")
_FINDINGS_KEYS = ("findings", "findings_section", "Findings", "FINDINGS")
_IMPRESSION_KEYS = (
    "impression",
    "impression_section",
    "conclusion",
    "summary",
    "Impression",
    "IMPRESSION",
)
_TEXT_KEYS = ("report", "text", "report_text", "Report")
_PATIENT_KEYS = ("patient_key", "patient_id", "PatientID", "patient")
_HEADING_RE = re.compile(r"\n?\s*(?:IMPRESSION|CONCLUSION|SUMMARY|OPINION)\s*:\s*", re.IGNORECASE)
_FINDINGS_HEADING_RE = re.compile(r"^\s*(?:FINDINGS|REPORT)\s*:\s*", re.IGNORECASE)


TargetText = Literal["report", "findings", "impression", "affirmed"]
"""Which text of a report image encoders regress (and the text ceiling scores)."""


def target_text(report: ReportRecord, target: TargetText = "report") -> str:
    """The text of ``report`` used as a training target: the whole report, one section,
    or ``affirmed`` (the whole report without its purely negated sentences)."""
    if target == "findings":
        return report.findings
    if target == "impression":
        return report.impression
    if target == "affirmed":
        from training.labels.negex import NegExExtractor

        return NegExExtractor().drop_negated(report.text)
    if target == "report":
        return report.text
    raise TrainingError(f"target text {target!r} is not one of report/findings/impression/affirmed")


@dataclass(frozen=True)
class ReportRecord:
    """One report, split into sections."""

    findings: str
    impression: str
    accession: str | None = None
    study_uid: str | None = None
    patient_key: str | None = None
    site: str | None = None
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The whole report for the encoder: impression first, then findings.

        The impression leads so that it survives truncation to the encoder's
        token limit (synthetic reports run to ~200 tokens).
        """
        return f"{self.impression}\n{self.findings}".strip()

    @property
    def key(self) -> str:
        """Study Instance UID if known, else accession number."""
        return self.study_uid or self.accession or ""


def split_sections(text: str) -> tuple[str, str]:
    """(findings, impression) of a free-text report split at its impression heading."""
    parts = _HEADING_RE.split(text, maxsplit=1)
    findings = _FINDINGS_HEADING_RE.sub("", parts[0]).strip()
    impression = parts[1].strip() if len(parts) > 1 else ""
    return findings, impression


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return value
    return None


def record_from_row(row: dict[str, Any], where: str) -> ReportRecord:
    """A :class:`ReportRecord` from a CSV/JSON row (see the module doc for field names)."""
    accession = _first(row, _ACCESSION_KEYS)
    study_uid = _first(row, _UID_KEYS)
    if accession is None and study_uid is None:
        raise TrainingError(f"{where}: no accession number or Study Instance UID field")
    findings = _first(row, _FINDINGS_KEYS)
    impression = _first(row, _IMPRESSION_KEYS)
    if findings is None and impression is None:
        text = _first(row, _TEXT_KEYS)
        if text is None:
            raise TrainingError(f"{where}: no findings/impression or report text field")
        findings, impression = split_sections(str(text))
    labels = row.get("labels") or {}
    if isinstance(labels, str):
        labels = json.loads(labels) if labels.strip() else {}
    if not isinstance(labels, dict):
        raise TrainingError(f"{where}: labels {labels!r} is not a mapping")
    patient = _first(row, _PATIENT_KEYS)
    site = row.get("site")
    return ReportRecord(
        findings=str(findings or "").strip(),
        impression=str(impression or "").strip(),
        accession=None if accession is None else str(accession),
        study_uid=None if study_uid is None else str(study_uid),
        patient_key=None if patient is None else str(patient),
        site=None if site in (None, "") else str(site),
        labels={str(k): int(v) for k, v in labels.items()},
    )


def iter_reports(path: Path) -> Iterator[ReportRecord]:
    """Reports of a ``.jsonl`` / ``.json`` (list) / ``.csv`` file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TrainingError(f"reports file {path} not found")
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for n, line in enumerate(handle, 1):
                if line.strip():
                    yield record_from_row(json.loads(line), f"{path}:{n}")
    elif suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise TrainingError(f"{path}: a .json reports file must hold a list of objects")
        for n, row in enumerate(rows):
            yield record_from_row(row, f"{path}[{n}]")
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle), 2):
                yield record_from_row(dict(row), f"{path}:{n}")
    else:
        raise TrainingError(f"reports file {path}: suffix {suffix!r} is not .jsonl, .json or .csv")


def load_reports(path: Path) -> list[ReportRecord]:
    """All reports of a file, as a list."""
    return list(iter_reports(path))
