"""Typed input of the DICOM results writers: what the analysis concluded for one study.

The analysis task fills an :class:`AnalysisResult` (or a :class:`NotAnalysedResult`
when no usable input was found) and hands it to :mod:`pipeline.results.writer`;
:mod:`pipeline.results.sr_read` parses an SR written from it back into the same
models, so the two directions can be compared field by field.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydicom.dataset import Dataset

from dicom_node.errors import ResultsError

_UID_PATTERN = r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$"
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")

UID = Annotated[str, Field(pattern=_UID_PATTERN, min_length=1, max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyIdentity(_Frozen):
    """Patient and study attributes copied from a dataset of the analysed study.

    The results go into the original study, so these are copied verbatim (Patient
    module, General Study module). Empty strings stand for empty type 2 attributes.
    """

    study_instance_uid: UID
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_date: str = ""
    study_time: str = ""
    referring_physician_name: str = ""
    study_description: str = ""

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> StudyIdentity:
        """Copy the study identity from any instance of the study."""
        uid = dataset.get("StudyInstanceUID")
        if not uid:
            raise ResultsError("StudyInstanceUID is missing from the source dataset")

        def text(keyword: str) -> str:
            value = dataset.get(keyword)
            return "" if value is None else str(value)

        return cls(
            study_instance_uid=str(uid),
            patient_id=text("PatientID"),
            issuer_of_patient_id=text("IssuerOfPatientID"),
            patient_name=text("PatientName"),
            patient_birth_date=text("PatientBirthDate"),
            patient_sex=text("PatientSex"),
            accession_number=text("AccessionNumber"),
            study_id=text("StudyID"),
            study_date=text("StudyDate"),
            study_time=text("StudyTime"),
            referring_physician_name=text("ReferringPhysicianName"),
            study_description=text("StudyDescription"),
        )

    def to_dataset(self) -> Dataset:
        """A dataset carrying only these patient and study attributes (UTF-8)."""
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.StudyInstanceUID = self.study_instance_uid
        ds.PatientID = self.patient_id
        if self.issuer_of_patient_id:
            ds.IssuerOfPatientID = self.issuer_of_patient_id
        ds.PatientName = self.patient_name
        ds.PatientBirthDate = self.patient_birth_date
        ds.PatientSex = self.patient_sex
        ds.AccessionNumber = self.accession_number
        ds.StudyID = self.study_id
        ds.StudyDate = self.study_date
        ds.StudyTime = self.study_time
        ds.ReferringPhysicianName = self.referring_physician_name
        if self.study_description:
            ds.StudyDescription = self.study_description
        return ds


class SeriesReference(_Frozen):
    """A source series the analysis read, with the instances it used."""

    sequence: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_+\-]+$")
    series_instance_uid: UID
    sop_class_uid: UID
    sop_instance_uids: tuple[UID, ...] = Field(min_length=1)


class ModelIdentity(_Frozen):
    """The algorithm that produced the result (TID 4019, Contributing Equipment).

    ``device_uid`` identifies one trained set of weights: it changes whenever the
    model is retrained, while ``version`` is the semantic version of the bundle.
    """

    name: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    device_uid: UID
    manufacturer: str = Field(min_length=1, max_length=64)

    @field_validator("version")
    @classmethod
    def _semantic_version(cls, value: str) -> str:
        if not _SEMVER.match(value):
            raise ValueError(f"version {value!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return value


class FindingResult(_Frozen):
    """Score and present/absent call of one finding (one TID 1501 group).

    A finding of a *user query* (sentences added at run time, not part of the
    model's calibrated query bank) has a score but no operating point:
    ``threshold`` and ``present`` are both None ("not called").
    """

    finding_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    display_name: str = Field(min_length=1, max_length=64)
    score: float
    threshold: float | None
    present: bool | None
    sequences: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _called_at_a_threshold(self) -> FindingResult:
        if (self.threshold is None) != (self.present is None):
            raise ValueError(
                f"finding {self.finding_id}: threshold and present must both be set "
                "(a calibrated finding) or both be None (a user query, not called)"
            )
        return self

    @property
    def is_user_query(self) -> bool:
        """True for a user query's finding: scored, not called."""
        return self.threshold is None


class TriageResult(_Frozen):
    """The overall normal/abnormal call of the study."""

    abnormal: bool
    score: float
    threshold: float


class PredecessorReference(_Frozen):
    """An earlier SR of the same study that a re-analysis supersedes."""

    study_instance_uid: UID
    series_instance_uid: UID
    sop_instance_uid: UID
    sop_class_uid: UID

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> PredecessorReference:
        """Reference the SR ``dataset`` (a previous result of this node)."""
        return cls(
            study_instance_uid=str(dataset.StudyInstanceUID),
            series_instance_uid=str(dataset.SeriesInstanceUID),
            sop_instance_uid=str(dataset.SOPInstanceUID),
            sop_class_uid=str(dataset.SOPClassUID),
        )

    def to_dataset(self) -> Dataset:
        """The four UIDs as a dataset (what highdicom's ``previous_versions`` reads)."""
        ds = Dataset()
        ds.StudyInstanceUID = self.study_instance_uid
        ds.SeriesInstanceUID = self.series_instance_uid
        ds.SOPInstanceUID = self.sop_instance_uid
        ds.SOPClassUID = self.sop_class_uid
        return ds


class _ResultBase(_Frozen):
    study: StudyIdentity
    model: ModelIdentity
    series: tuple[SeriesReference, ...] = ()
    predecessor: PredecessorReference | None = None

    @model_validator(mode="after")
    def _predecessor_in_same_study(self) -> _ResultBase:
        if (
            self.predecessor is not None
            and self.predecessor.study_instance_uid != self.study.study_instance_uid
        ):
            raise ValueError(
                "predecessor StudyInstanceUID "
                f"{self.predecessor.study_instance_uid} differs from the study's "
                f"{self.study.study_instance_uid}"
            )
        return self

    @property
    def sequences_used(self) -> tuple[str, ...]:
        """Names of the sequences whose series the analysis read, in order."""
        return tuple(dict.fromkeys(s.sequence for s in self.series))

    def series_for(self, sequences: tuple[str, ...]) -> tuple[SeriesReference, ...]:
        """The referenced series of the named sequences."""
        return tuple(s for s in self.series if s.sequence in sequences)


class AnalysisResult(_ResultBase):
    """A completed analysis: per-finding scores and calls plus the triage result."""

    status: Literal["analysed"] = "analysed"
    findings: tuple[FindingResult, ...] = Field(min_length=1)
    triage: TriageResult

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisResult:
        if not self.series:
            raise ValueError("an analysed result must reference at least one source series")
        ids = [f.finding_id for f in self.findings]
        if len(set(ids)) != len(ids):
            raise ValueError(f"finding ids are not unique: {ids}")
        used = set(self.sequences_used)
        for finding in self.findings:
            unknown = set(finding.sequences) - used
            if unknown:
                raise ValueError(
                    f"finding {finding.finding_id} names sequences {sorted(unknown)} "
                    "that no referenced series has"
                )
        return self


class NotAnalysedResult(_ResultBase):
    """The study could not be analysed; ``reason`` says why (shown to the radiologist)."""

    status: Literal["not_analysed"] = "not_analysed"
    reason: str = Field(min_length=1, max_length=1024)


StudyResult = Annotated[AnalysisResult | NotAnalysedResult, Field(discriminator="status")]
