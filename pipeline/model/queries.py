"""The query bank: finding ids, their paraphrased query sentences and the normal references.

Zero-shot scoring (ALIGN) compares an image embedding with the embeddings of
sentences describing a finding, against the embeddings of sentences describing a
normal brain. Several paraphrases per finding are averaged (a single prompt pair
is brittle, as Merlin's users found). Thresholds for present/absent calls are
chosen on validation and stored with each finding (:mod:`.operating_points`).

The bank is plain data (pydantic, ``extra="forbid"``) so it can live in a
bundle's ``manifest.json`` and be validated when loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.model.operating_points import OPERATING_POINTS

TRIAGE_FINDING = "abnormal"
"""The finding id whose call is the study's normal/abnormal triage."""

_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class FindingQuery(BaseModel):
    """One finding: its id, display name, query sentences and stored thresholds."""

    model_config = ConfigDict(extra="forbid")

    id: str
    display_name: str
    sentences: list[str] = Field(min_length=1)
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Operating point name (``sens90``/``youden``) -> threshold, chosen on validation."""
    operating_point: str = "sens90"
    """Which stored threshold the present/absent call uses."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"finding id {value!r} must match {_ID_RE.pattern}")
        return value

    @field_validator("sentences")
    @classmethod
    def _check_sentences(cls, value: list[str]) -> list[str]:
        cleaned = [s.strip() for s in value]
        if any(not s for s in cleaned):
            raise ValueError("query sentences must not be empty")
        return cleaned

    @model_validator(mode="after")
    def _check_operating_point(self) -> FindingQuery:
        if self.operating_point not in OPERATING_POINTS:
            raise ValueError(
                f"operating_point {self.operating_point!r} is not one of {OPERATING_POINTS}"
            )
        unknown = set(self.thresholds) - set(OPERATING_POINTS)
        if unknown:
            raise ValueError(f"unknown operating points in thresholds: {sorted(unknown)}")
        return self

    @property
    def threshold(self) -> float | None:
        """The threshold at the selected operating point, or None when not calibrated."""
        return self.thresholds.get(self.operating_point)


class QueryBank(BaseModel):
    """Normal reference sentences and the finding queries scored against them."""

    model_config = ConfigDict(extra="forbid")

    normal_references: list[str] = Field(min_length=1)
    findings: list[FindingQuery] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> QueryBank:
        ids = [f.id for f in self.findings]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate finding ids in the query bank: {duplicates}")
        return self

    @property
    def finding_ids(self) -> list[str]:
        """Finding ids in bank order."""
        return [f.id for f in self.findings]

    def finding(self, finding_id: str) -> FindingQuery:
        """The finding with id ``finding_id`` (KeyError when absent)."""
        for f in self.findings:
            if f.id == finding_id:
                return f
        raise KeyError(finding_id)

    def with_thresholds(
        self,
        thresholds: dict[str, dict[str, float]],
        operating_point: str | Mapping[str, str] | None = None,
    ) -> QueryBank:
        """A copy whose findings carry ``thresholds[finding_id]`` (others unchanged).

        ``operating_point``: one point for every finding, or finding id -> point
        (findings not named keep theirs).
        """
        findings = []
        for f in self.findings:
            update: dict[str, object] = {}
            if f.id in thresholds:
                update["thresholds"] = dict(thresholds[f.id])
            point = (
                operating_point.get(f.id)
                if isinstance(operating_point, Mapping)
                else operating_point
            )
            if point is not None:
                update["operating_point"] = point
            findings.append(f.model_copy(update=update))
        return self.model_copy(update={"findings": findings})


NORMAL_REFERENCES: tuple[str, ...] = (
    "normal study",
    "normal appearances of the brain",
    "no intracranial abnormality identified",
    "Normal MRI brain.",
    "no acute intracranial abnormality",
)

DEFAULT_FINDINGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        TRIAGE_FINDING,
        "Abnormal study",
        (
            "abnormal appearances of the brain",
            "there is an intracranial abnormality",
            "abnormal MRI of the brain requiring review",
            "abnormal MRI brain",
            "intracranial pathology is present",
        ),
    ),
    (
        "acute_infarct",
        "Acute infarct",
        (
            "acute infarct",
            "restricted diffusion in keeping with acute ischaemic stroke",
            "acute territorial infarction",
            "acute ischaemic infarct with restricted diffusion",
            "acute stroke",
        ),
    ),
    (
        "haemorrhage",
        "Haemorrhage",
        (
            "intracranial haemorrhage",
            "acute haematoma",
            "blood products in keeping with haemorrhage",
            "haemorrhage",
            "hemorrhage",
            "acute intraparenchymal haemorrhage",
            "bleed",
            "intracerebral haematoma",
        ),
    ),
    (
        "meningioma",
        "Meningioma",
        (
            "meningioma",
            "extra-axial dural based mass in keeping with meningioma",
            "enhancing extra-axial lesion, likely meningioma",
            "extra-axial lesion, likely a meningioma",
            "dural based extra-axial mass",
        ),
    ),
    (
        "hydrocephalus",
        "Hydrocephalus",
        (
            "hydrocephalus",
            "dilated ventricles in keeping with hydrocephalus",
            "ventriculomegaly out of proportion to the sulci",
            "enlarged ventricles",
            "communicating hydrocephalus",
        ),
    ),
    (
        "demyelination",
        "Demyelination",
        (
            "white matter lesions in keeping with demyelination",
            "multiple sclerosis plaques",
            "periventricular demyelinating lesions",
            "demyelination",
            "white matter plaques in keeping with multiple sclerosis",
        ),
    ),
    (
        "tumour",
        "Tumour",
        (
            "intra-axial mass in keeping with tumour",
            "brain tumour",
            "intra-axial neoplasm with surrounding oedema",
            "glioma",
            "intra-axial tumour",
            "tumor",
            "enhancing mass in keeping with high-grade glioma",
            "metastasis",
        ),
    ),
)


def default_query_bank() -> QueryBank:
    """The default bank: ``abnormal`` (triage) and six findings, no thresholds yet."""
    return QueryBank(
        normal_references=list(NORMAL_REFERENCES),
        findings=[
            FindingQuery(id=fid, display_name=name, sentences=list(sentences))
            for fid, name, sentences in DEFAULT_FINDINGS
        ],
    )
