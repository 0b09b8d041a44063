"""The AI-results Structured Report: Comprehensive 3D SR, root template TID 1500.

Layout of the content tree (IHE Radiology "AI Results"; see ``shared/CONFORMANCE.md``)::

    CONTAINER Imaging Measurement Report (TID 1500)
      HAS CONCEPT MOD Language of Content Item and Descendants     (TID 1204)
      HAS OBS CONTEXT Observer Type = Device, Device Observer UID,
                      Name, Manufacturer, Model Name              (TID 1001/1004)
      HAS CONCEPT MOD Procedure reported = LN 25056-3             (CID 100)
      CONTAINS Imaging Measurements                               (row 6, analysed only)
        CONTAINS Measurement Group                                (TID 1501, one per finding)
          Tracking Identifier "Acute infarct (acute_infarct)" + Tracking UID
          Finding = SNOMED CT finding type (private code where none exists)
          Algorithm Name / Version                                (TID 4019)
          NUM Score (SCT 246262008, UCUM "1")                     (TID 300)
          NUM Threshold Value (DCM 122411, UCUM "1")              (TID 300)
          CODE Presence (SCT 705057003) = Present / Absent
          IMAGE Source, a few per contributing series (all are in the evidence)
        CONTAINS Measurement Group, Finding = AI triage result    (triage score + threshold)
      CONTAINS Qualitative Evaluations                            (row 12, added here)
        CODE AI triage result = Normal / Abnormal / Normality undetermined
        TEXT Sequence used = "FLAIR (series 1.2.3)"               (one per source series)
        TEXT Reason analysis was not performed                    (not analysed only)

highdicom's :class:`~highdicom.sr.MeasurementReport` builds rows 1-9 only, so the
Qualitative Evaluations container is appended to its content tree explicitly. A
"not analysed" report has no measurement groups (highdicom refuses that), so its
root container is assembled from the same highdicom templates by hand; TID 1500
requires one of rows 6, 10 or 12, and row 12 is present.

Validator warnings that remain on these objects (``tests/validators.py`` lists them
in the tests): dciodvfy and pixelmed report none that indicate a defect; the SR has
no Image Library (TID 1600, optional) because the writer does not hold the source
images' geometry.
"""

from __future__ import annotations

import datetime
import logging
import uuid

import highdicom as hd
from highdicom.sr import (
    AlgorithmIdentification,
    CodeContentItem,
    ContainerContentItem,
    ContentItem,
    ContentSequence,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    TextContentItem,
    TrackingIdentifier,
)
from highdicom.sr.templates import DEFAULT_LANGUAGE, LanguageOfContentItemAndDescendants
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import MRImageStorage

from dicom_node.errors import ResultsError
from pipeline.results import codes as rc
from pipeline.results.model import (
    AnalysisResult,
    FindingResult,
    ModelIdentity,
    NotAnalysedResult,
    SeriesReference,
)

logger = logging.getLogger(__name__)

SR_SERIES_DESCRIPTION = "AI triage result - NOT FOR DIAGNOSTIC USE"
"""Series Description of every results SR (LO, at most 64 characters)."""
SR_SERIES_NUMBER = 9001
IMAGE_REFERENCES_PER_SERIES = 5
"""Source images each measurement group cites per contributing series (evenly spaced).

Every source instance is listed in the Current Requested Procedure Evidence
Sequence; the groups cite a few per series, which is what tells a reader which
series contributed to a finding. Citing all of them (6 sequences x 150 slices x 7
groups) makes highdicom take ~15 s to build the SR and ~30 s to parse it.
"""
TRIAGE_TRACKING_ID = "Abnormal study (triage)"


def finding_tracking_id(finding: FindingResult) -> str:
    """Tracking Identifier of a finding's group: ``"Acute infarct (acute_infarct)"``."""
    return f"{finding.display_name} ({finding.finding_id})"


def tracking_uid(study_instance_uid: str, tracking_id: str) -> str:
    """A Tracking UID stable across re-analyses of the same study (same finding, same UID)."""
    name = f"neurotriage-tracking/{study_instance_uid}/{tracking_id}"
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def build_sr(
    result: AnalysisResult | NotAnalysedResult,
    *,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = SR_SERIES_NUMBER,
    instance_number: int = 1,
    institution_name: str | None = None,
    image_references_per_series: int | None = IMAGE_REFERENCES_PER_SERIES,
) -> hd.sr.Comprehensive3DSR:
    """Build the results SR of one study.

    Args:
        result: What the analysis concluded (or why it could not run).
        series_instance_uid: UID of the new results series (generated when omitted).
        sop_instance_uid: UID of the SR instance (generated when omitted).
        series_number: Series Number of the results series.
        instance_number: Instance Number of the SR.
        institution_name: Optional Institution Name of the node.
        image_references_per_series: How many source images per contributing series
            each measurement group cites (evenly spaced; ``None``: all of them).

    Returns:
        The SR, in the original study (same Study Instance UID, patient, accession),
        referencing ``result.predecessor`` in its Predecessor Documents Sequence.
    """
    study_uid = result.study.study_instance_uid
    if isinstance(result, AnalysisResult):
        if image_references_per_series is not None and image_references_per_series < 2:
            raise ResultsError(
                f"image_references_per_series must be None or >= 2, "
                f"not {image_references_per_series}"
            )
        root = _analysed_root(result, image_references_per_series)
    else:
        root = _not_analysed_root(result)
    root.ContentSequence.append(_qualitative_evaluations(result))

    evidence = _evidence(result)
    placeholder_evidence = not result.series
    if placeholder_evidence:
        # highdicom requires evidence; a study with nothing usable has none to cite.
        placeholder = result.study.to_dataset()
        placeholder.SeriesInstanceUID = hd.UID()
        placeholder.SOPInstanceUID = hd.UID()
        placeholder.SOPClassUID = MRImageStorage  # any image class: highdicom maps it to an IOD
        evidence = [placeholder]

    previous = [result.predecessor.to_dataset()] if result.predecessor is not None else None
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=root,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=instance_number,
        manufacturer=result.model.manufacturer,
        is_complete=True,
        is_final=False,
        institution_name=institution_name,
        previous_versions=previous,
        contributing_equipment=[contributing_equipment(result.model)],
        coding_schemes=rc.coding_scheme_identification(),
        series_description=SR_SERIES_DESCRIPTION,
        manufacturer_model_name=result.model.name,
        software_versions=result.model.version,
    )
    if placeholder_evidence:
        del sr.CurrentRequestedProcedureEvidenceSequence
    logger.info(
        "built %s results SR %s for study %s",
        result.status,
        sr.SOPInstanceUID,
        study_uid,
    )
    return sr


def contributing_equipment(model: ModelIdentity) -> hd.ContributingEquipment:
    """Contributing Equipment item naming the algorithm and its device UID.

    The device UID goes into Device Serial Number: the Contributing Equipment
    Sequence has no Device UID attribute (dciodvfy flags (0018,1002) there as
    non-standard); the SR's device observer context carries it as Device Observer UID.
    """
    return hd.ContributingEquipment(
        manufacturer=model.manufacturer,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=model.device_uid,
        contribution_datetime=datetime.datetime.now(tz=datetime.UTC).replace(tzinfo=None),
        contribution_description=(
            f"AI analysis by {model.name} {model.version} (device UID {model.device_uid})"
        )[:1024],
    )


def _observation_context(model: ModelIdentity) -> hd.sr.ObservationContext:
    device = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=model.device_uid,
            name=model.name,
            manufacturer_name=model.manufacturer,
            model_name=f"{model.name} {model.version}"[:64],
        ),
    )
    return hd.sr.ObservationContext(observer_device_context=device)


def _algorithm(model: ModelIdentity) -> AlgorithmIdentification:
    return AlgorithmIdentification(name=model.name, version=model.version)


def _cited_instances(series: SeriesReference, limit: int | None) -> list[str]:
    uids = list(series.sop_instance_uids)
    if limit is None or len(uids) <= limit:
        return uids
    picks = sorted({round(i * (len(uids) - 1) / (limit - 1)) for i in range(limit)})
    return [uids[i] for i in picks]


def _source_images(
    series: tuple[SeriesReference, ...], limit: int | None
) -> list[SourceImageForMeasurementGroup]:
    return [
        SourceImageForMeasurementGroup(
            referenced_sop_class_uid=s.sop_class_uid, referenced_sop_instance_uid=uid
        )
        for s in series
        for uid in _cited_instances(s, limit)
    ]


def _score_measurements(score: float, threshold: float | None) -> list[Measurement]:
    measurements = [Measurement(name=rc.SCORE, value=float(score), unit=rc.NO_UNITS)]
    if threshold is not None:
        measurements.append(
            Measurement(name=rc.THRESHOLD, value=float(threshold), unit=rc.NO_UNITS)
        )
    return measurements


def _finding_group(
    result: AnalysisResult, finding: FindingResult, limit: int | None
) -> MeasurementsAndQualitativeEvaluations:
    """One TID 1501 Measurement Group for one finding.

    A user query's group (no operating point) has the score only: no threshold
    and no Presence evaluation, and a private finding type.
    """
    tracking_id = finding_tracking_id(finding)
    presence = (
        None
        if finding.present is None
        else [
            QualitativeEvaluation(
                name=rc.PRESENCE, value=rc.PRESENT if finding.present else rc.ABSENT
            )
        ]
    )
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(
            uid=tracking_uid(result.study.study_instance_uid, finding.finding_id),
            identifier=tracking_id,
        ),
        finding_type=rc.finding_type(finding.finding_id, finding.display_name),
        algorithm_id=_algorithm(result.model),
        measurements=_score_measurements(finding.score, finding.threshold),
        qualitative_evaluations=presence,
        source_images=_source_images(result.series_for(finding.sequences), limit),
    )


def _triage_group(
    result: AnalysisResult, limit: int | None
) -> MeasurementsAndQualitativeEvaluations:
    """The measurement group carrying the triage score and its threshold."""
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(
            uid=tracking_uid(result.study.study_instance_uid, TRIAGE_TRACKING_ID),
            identifier=TRIAGE_TRACKING_ID,
        ),
        finding_type=rc.TRIAGE_RESULT,
        algorithm_id=_algorithm(result.model),
        measurements=_score_measurements(result.triage.score, result.triage.threshold),
        source_images=_source_images(result.series, limit),
    )


def _analysed_root(result: AnalysisResult, limit: int | None) -> ContainerContentItem:
    groups = [_finding_group(result, f, limit) for f in result.findings]
    groups.append(_triage_group(result, limit))
    report = MeasurementReport(
        observation_context=_observation_context(result.model),
        procedure_reported=rc.PROCEDURE_REPORTED,
        imaging_measurements=groups,
    )
    root = report[0]
    if not isinstance(root, ContainerContentItem):
        raise ResultsError(f"MeasurementReport root is a {type(root).__name__}, not a CONTAINER")
    return root


def _not_analysed_root(result: NotAnalysedResult) -> ContainerContentItem:
    """TID 1500 rows 1-5 built from highdicom's templates, without measurement groups."""
    root = ContainerContentItem(name=codes.cid7021.ImagingMeasurementReport, template_id="1500")
    root.ContentSequence = ContentSequence()
    root.ContentSequence.extend(LanguageOfContentItemAndDescendants(DEFAULT_LANGUAGE))
    root.ContentSequence.extend(_observation_context(result.model))
    root.ContentSequence.append(
        CodeContentItem(
            name=codes.DCM.ProcedureReported,
            value=rc.PROCEDURE_REPORTED,
            relationship_type=RelationshipTypeValues.HAS_CONCEPT_MOD,
        )
    )
    return root


def sequence_used_text(series: SeriesReference) -> str:
    """Value of a "Sequence used" TEXT item: ``"FLAIR (series 1.2.3)"``."""
    return f"{series.sequence} (series {series.series_instance_uid})"


def _qualitative_evaluations(result: AnalysisResult | NotAnalysedResult) -> ContainerContentItem:
    """TID 1500 row 12: the report-level Qualitative Evaluations container."""
    container = ContainerContentItem(
        name=rc.QUALITATIVE_EVALUATIONS, relationship_type=RelationshipTypeValues.CONTAINS
    )
    if isinstance(result, AnalysisResult):
        call = rc.ABNORMAL if result.triage.abnormal else rc.NORMAL
    else:
        call = rc.NORMALITY_UNDETERMINED
    items: list[ContentItem] = [
        CodeContentItem(
            name=rc.TRIAGE_RESULT, value=call, relationship_type=RelationshipTypeValues.CONTAINS
        )
    ]
    if isinstance(result, NotAnalysedResult):
        items.append(
            TextContentItem(
                name=rc.ANALYSIS_NOT_PERFORMED,
                value=result.reason,
                relationship_type=RelationshipTypeValues.CONTAINS,
            )
        )
    items.extend(
        TextContentItem(
            name=rc.SEQUENCE_USED,
            value=sequence_used_text(s),
            relationship_type=RelationshipTypeValues.CONTAINS,
        )
        for s in result.series
    )
    container.ContentSequence = ContentSequence(items)
    return container


def _evidence(result: AnalysisResult | NotAnalysedResult) -> list[Dataset]:
    """One small dataset per source instance: the study identity plus its UIDs.

    highdicom copies the Patient and General Study modules of the first evidence
    dataset into the SR, so these carry the identity of the original study.
    """
    base = result.study.to_dataset()
    evidence: list[Dataset] = []
    for series in result.series:
        for uid in series.sop_instance_uids:
            ds = Dataset()
            ds.update(base)
            ds.SeriesInstanceUID = series.series_instance_uid
            ds.SOPInstanceUID = uid
            ds.SOPClassUID = series.sop_class_uid
            evidence.append(ds)
    return evidence
