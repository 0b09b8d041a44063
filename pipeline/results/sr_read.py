"""Parse a results SR written by :mod:`pipeline.results.sr` back into the result models.

The mirror of :func:`pipeline.results.sr.build_sr` (highdicom's parse-and-build
symmetry): ``read_sr(build_sr(result))`` gives back ``result``'s scores, calls,
triage, model identity, source references and predecessor. Only the content this
node writes is understood; another vendor's TID 1500 report raises
:class:`~dicom_node.errors.ResultsError` naming what is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import highdicom as hd
from highdicom.sr import CodedConcept, ContentSequence, MeasurementReport
from highdicom.sr.utils import find_content_items
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from dicom_node.errors import ResultsError
from pipeline.results import codes as rc
from pipeline.results.model import (
    AnalysisResult,
    FindingResult,
    ModelIdentity,
    NotAnalysedResult,
    PredecessorReference,
    SeriesReference,
    StudyIdentity,
    TriageResult,
)

_SEQUENCE_USED = re.compile(r"^(?P<sequence>\S+) \(series (?P<uid>[0-9.]+)\)$")
_TRACKING = re.compile(r"^(?P<name>.+) \((?P<id>[a-z][a-z0-9_]*)\)$")


def read_sr_file(path: Path | str) -> AnalysisResult | NotAnalysedResult:
    """Read and parse a results SR file."""
    return read_sr(dcmread(path))


def read_sr(dataset: Dataset) -> AnalysisResult | NotAnalysedResult:
    """Parse a results SR (a Comprehensive 3D SR, TID 1500, as this node writes it)."""
    sop_uid = dataset.get("SOPInstanceUID", "?")
    try:
        sr = hd.sr.Comprehensive3DSR.from_dataset(dataset)
    except (ValueError, AttributeError) as exc:
        raise ResultsError(f"SOPInstanceUID {sop_uid} is not a readable SR: {exc}") from exc
    report = sr.content
    if not isinstance(report, MeasurementReport):
        raise ResultsError(f"SOPInstanceUID {sop_uid}: root template is not TID 1500")

    study = StudyIdentity.from_dataset(dataset)
    model = _model_identity(dataset, report)
    qualitative = _qualitative_items(report, sop_uid)
    series = _series(sr, qualitative)
    predecessor = _predecessor(dataset)

    call = _code_value(qualitative, rc.TRIAGE_RESULT)
    if call is None:
        raise ResultsError(f"SOPInstanceUID {sop_uid} has no {rc.TRIAGE_RESULT.meaning} item")
    if call == rc.NORMALITY_UNDETERMINED:
        reason = _text_values(qualitative, rc.ANALYSIS_NOT_PERFORMED)
        return NotAnalysedResult(
            study=study,
            model=model,
            series=series,
            predecessor=predecessor,
            reason=reason[0] if reason else "not stated",
        )

    findings: list[FindingResult] = []
    triage: TriageResult | None = None
    sequence_of_instance = {uid: ref.sequence for ref in series for uid in ref.sop_instance_uids}
    for group in report.get_image_measurement_groups():
        score, threshold = _score_and_threshold(group, sop_uid)
        if group.finding_type == rc.TRIAGE_RESULT:
            if threshold is None:
                raise ResultsError(f"SOPInstanceUID {sop_uid}: the triage group has no threshold")
            triage = TriageResult(abnormal=call == rc.ABNORMAL, score=score, threshold=threshold)
            continue
        tracking = _TRACKING.match(group.tracking_identifier or "")
        if tracking is None:
            raise ResultsError(
                f"SOPInstanceUID {sop_uid}: Tracking Identifier "
                f"{group.tracking_identifier!r} is not '<name> (<finding id>)'"
            )
        presence = group.get_qualitative_evaluations(name=rc.PRESENCE)
        if bool(presence) != (threshold is not None):
            # Calibrated: threshold + Presence; a user query: neither.
            missing = "Presence evaluation" if threshold is not None else "threshold"
            raise ResultsError(f"SOPInstanceUID {sop_uid}: group {tracking['id']} has no {missing}")
        sequences = dict.fromkeys(
            sequence_of_instance[img.referenced_sop_instance_uid]
            for img in group.source_images
            if img.referenced_sop_instance_uid in sequence_of_instance
        )
        findings.append(
            FindingResult(
                finding_id=tracking["id"],
                display_name=tracking["name"],
                score=score,
                threshold=threshold,
                present=presence[0].value == rc.PRESENT if presence else None,
                sequences=tuple(sequences),
            )
        )
    if triage is None:
        raise ResultsError(f"SOPInstanceUID {sop_uid} has no triage measurement group")
    return AnalysisResult(
        study=study,
        model=model,
        series=series,
        predecessor=predecessor,
        findings=tuple(findings),
        triage=triage,
    )


def _model_identity(dataset: Dataset, report: MeasurementReport) -> ModelIdentity:
    """Device observer (UID, name, manufacturer) + Contributing Equipment (version)."""
    observers = report.get_observer_contexts(observer_type=codes.cid270.Device)
    if not observers:
        raise ResultsError(f"SOPInstanceUID {dataset.SOPInstanceUID} has no device observer")
    device = observers[0].observer_identifying_attributes
    if not isinstance(device, hd.sr.DeviceObserverIdentifyingAttributes):
        raise ResultsError(f"SOPInstanceUID {dataset.SOPInstanceUID}: observer is not a device")
    version = None
    for item in dataset.get("ContributingEquipmentSequence", []):
        # highdicom adds an item for itself; ours carries the device UID as serial number.
        if item.get("DeviceSerialNumber") == device.uid:
            version = item.get("SoftwareVersions")
    if version is None:
        raise ResultsError(
            f"SOPInstanceUID {dataset.SOPInstanceUID}: no ContributingEquipmentSequence item "
            f"with DeviceSerialNumber {device.uid} (the model's device UID)"
        )
    return ModelIdentity(
        name=str(device.name),
        version=str(version),
        device_uid=str(device.uid),
        manufacturer=str(device.manufacturer_name),
    )


def _qualitative_items(report: MeasurementReport, sop_uid: str) -> list[Dataset]:
    containers = find_content_items(report[0], name=rc.QUALITATIVE_EVALUATIONS)
    if not containers:
        raise ResultsError(f"SOPInstanceUID {sop_uid} has no Qualitative Evaluations container")
    return list(containers[0].ContentSequence)


def _code_value(items: list[Dataset], name: CodedConcept) -> CodedConcept | None:
    for item in items:
        if item.ValueType == "CODE" and _concept(item) == name:
            return CodedConcept.from_dataset(item.ConceptCodeSequence[0])
    return None


def _text_values(items: list[Dataset], name: CodedConcept) -> list[str]:
    return [
        str(item.TextValue) for item in items if item.ValueType == "TEXT" and _concept(item) == name
    ]


def _concept(item: Dataset) -> CodedConcept:
    return CodedConcept.from_dataset(item.ConceptNameCodeSequence[0])


def _series(sr: hd.sr.Comprehensive3DSR, qualitative: list[Dataset]) -> tuple[SeriesReference, ...]:
    """Source series: names from the "Sequence used" items, instances from the evidence."""
    instances: dict[str, list[tuple[str, str]]] = {}
    for _study, series_uid, sop_uid, sop_class in sr.get_evidence(current_procedure_only=True):
        instances.setdefault(str(series_uid), []).append((str(sop_uid), str(sop_class)))
    refs = []
    for text in _text_values(qualitative, rc.SEQUENCE_USED):
        match = _SEQUENCE_USED.match(text)
        if match is None:
            raise ResultsError(f"Sequence used item {text!r} is not '<sequence> (series <uid>)'")
        members = instances.get(match["uid"])
        if not members:
            raise ResultsError(f"series {match['uid']} is not in the SR's evidence")
        refs.append(
            SeriesReference(
                sequence=match["sequence"],
                series_instance_uid=match["uid"],
                sop_class_uid=members[0][1],
                sop_instance_uids=tuple(uid for uid, _cls in members),
            )
        )
    return tuple(refs)


def _score_and_threshold(group: ContentSequence, sop_uid: str) -> tuple[float, float | None]:
    """The group's score and threshold (None: a user query's group, not called)."""
    scores = group.get_measurements(name=rc.SCORE)  # type: ignore[attr-defined]
    if not scores:
        raise ResultsError(f"SOPInstanceUID {sop_uid}: a group has no {rc.SCORE.meaning}")
    thresholds = group.get_measurements(name=rc.THRESHOLD)  # type: ignore[attr-defined]
    threshold = float(thresholds[0].value) if thresholds else None
    return float(scores[0].value), threshold


def _predecessor(dataset: Dataset) -> PredecessorReference | None:
    for study_item in dataset.get("PredecessorDocumentsSequence", []):
        for series_item in study_item.ReferencedSeriesSequence:
            for sop_item in series_item.ReferencedSOPSequence:
                return PredecessorReference(
                    study_instance_uid=str(study_item.StudyInstanceUID),
                    series_instance_uid=str(series_item.SeriesInstanceUID),
                    sop_instance_uid=str(sop_item.ReferencedSOPInstanceUID),
                    sop_class_uid=str(sop_item.ReferencedSOPClassUID),
                )
    return None
