"""Write the DICOM results of one study (the SR and the heatmap series) to a folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from dicom_node.errors import ResultsError
from pipeline.results.model import AnalysisResult, NotAnalysedResult
from pipeline.results.sc import Caption, build_heatmap_series
from pipeline.results.sr import SR_SERIES_NUMBER, build_sr

logger = logging.getLogger(__name__)

TRIAGE_HEATMAP = "triage"
"""``HeatmapInput.finding_id`` of the map explaining the overall triage call."""


@dataclass(frozen=True)
class HeatmapInput:
    """A saliency map on the grid of one source series.

    Attributes:
        finding_id: The finding it explains (a ``FindingResult.finding_id``) or
            :data:`TRIAGE_HEATMAP`.
        sequence: The sequence whose slices it is drawn on.
        source: The source slices, sorted along the normal
            (:func:`pipeline.results.heatmap_geometry.sort_slices`).
        heatmap: The map on those slices, shape (slices, rows, columns)
            (:func:`pipeline.results.heatmap_geometry.resample_to_slices`).
        map_from: The sequences whose maps were averaged into it, when more than
            ``sequence``'s own (``ScoringSpec.heatmap_sources``); empty otherwise.
    """

    finding_id: str
    sequence: str
    source: Sequence[Dataset]
    heatmap: npt.NDArray[np.floating]
    map_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenObject:
    """One file written, with the UIDs a sender or a registry needs."""

    path: Path
    kind: str
    """``"sr"`` or ``"sc"``."""
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    label: str
    """``"sr"`` for the report, else the finding id of the heatmap."""


@dataclass(frozen=True)
class WrittenResults:
    """Everything written for one study."""

    study_instance_uid: str
    sr: WrittenObject
    heatmaps: list[WrittenObject] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """The SR first, then the heatmap captures."""
        return [self.sr.path, *(h.path for h in self.heatmaps)]


def _caption(result: AnalysisResult, heatmap: HeatmapInput) -> Caption:
    if heatmap.finding_id == TRIAGE_HEATMAP:
        label, score = "Abnormal study (triage)", result.triage.score
        threshold, present = result.triage.threshold, result.triage.abnormal
    else:
        matches = [f for f in result.findings if f.finding_id == heatmap.finding_id]
        if not matches:
            raise ResultsError(
                f"heatmap finding_id {heatmap.finding_id!r} is not among the result's findings"
            )
        finding = matches[0]
        if finding.threshold is None or finding.present is None:
            raise ResultsError(
                f"heatmap finding_id {heatmap.finding_id!r} is a user query: it is not called, "
                "so it has no heatmap"
            )
        label, score = finding.display_name, finding.score
        threshold, present = finding.threshold, finding.present
    return Caption(
        label=label,
        score=score,
        threshold=threshold,
        present=present,
        sequence=heatmap.sequence,
        map_from=heatmap.map_from,
        model_name=result.model.name,
        model_version=result.model.version,
    )


def _record(path: Path, ds: Dataset, kind: str, label: str) -> WrittenObject:
    return WrittenObject(
        path=path,
        kind=kind,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        label=label,
    )


def write_results(
    result: AnalysisResult | NotAnalysedResult,
    out_dir: Path,
    heatmaps: Sequence[HeatmapInput] = (),
    *,
    sr_series_number: int = SR_SERIES_NUMBER,
    slices_per_heatmap: int = 5,
) -> WrittenResults:
    """Write the SR and one heatmap series per :class:`HeatmapInput` under ``out_dir``.

    Files are named ``SR_<SOPInstanceUID>.dcm`` and ``SC_<finding>_<sequence>_<n>.dcm``; heatmap
    series are numbered after the SR's series. A "not analysed" result takes no maps.
    """
    if isinstance(result, NotAnalysedResult) and heatmaps:
        raise ResultsError("a not-analysed result cannot carry heatmaps")
    study_uid = result.study.study_instance_uid
    out_dir.mkdir(parents=True, exist_ok=True)

    sr = build_sr(result, series_number=sr_series_number)
    sr_path = out_dir / f"SR_{sr.SOPInstanceUID}.dcm"
    sr.save_as(sr_path, enforce_file_format=True)
    written = WrittenResults(study_instance_uid=study_uid, sr=_record(sr_path, sr, "sr", "sr"))

    for offset, heatmap in enumerate(heatmaps, start=1):
        if not isinstance(result, AnalysisResult):  # pragma: no cover - rejected above
            break
        for ds in heatmap.source:
            if ds.StudyInstanceUID != study_uid:
                raise ResultsError(
                    f"heatmap source StudyInstanceUID {ds.StudyInstanceUID} is not the "
                    f"result's study {study_uid}"
                )
        images = build_heatmap_series(
            heatmap.source,
            heatmap.heatmap,
            _caption(result, heatmap),
            result.model,
            series_number=sr_series_number + offset,
            slice_count=slices_per_heatmap,
        )
        for image in images:
            name = f"SC_{heatmap.finding_id}_{heatmap.sequence}_{image.InstanceNumber:03d}.dcm"
            path = out_dir / name
            image.save_as(path, enforce_file_format=True)
            written.heatmaps.append(_record(path, image, "sc", heatmap.finding_id))
    logger.info(
        "wrote results of study %s: 1 SR, %d heatmap captures",
        study_uid,
        len(written.heatmaps),
    )
    return written
