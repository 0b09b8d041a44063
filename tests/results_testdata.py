"""Synthetic source data for the results-writer tests: small MR series and results.

The slices are pydicom's ``MR_small.dcm`` (64x64) replicated along the slice
normal with proper geometry and fresh UIDs, each slice scaled a little so the
volume is not constant along z; heatmaps are Gaussian blobs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pipeline.results.model import (
    AnalysisResult,
    FindingResult,
    ModelIdentity,
    NotAnalysedResult,
    SeriesReference,
    StudyIdentity,
    TriageResult,
)

MODEL = ModelIdentity(
    name="NeuroTriage ALIGN",
    version="1.2.0",
    device_uid="2.25.111222333444555666777888999000111",
    manufacturer="NeuroTriage Node",
)


def _template() -> Dataset:
    path = get_testdata_file("MR_small.dcm")
    if path is None:
        raise RuntimeError("pydicom test file MR_small.dcm is missing")
    return dcmread(path)


def make_study_identity(seed: int = 0) -> StudyIdentity:
    """Patient and study attributes of a made-up study."""
    return StudyIdentity(
        study_instance_uid=generate_uid(),
        patient_id=f"NT-{seed:05d}",
        patient_name="Test^Patient",
        patient_birth_date="19700101",
        patient_sex="F",
        accession_number=f"ACC{seed:06d}",
        study_id="1",
        study_date="20260101",
        study_time="120000",
        referring_physician_name="Referrer^Dr",
        study_description="MRI brain",
    )


def make_mr_series(
    study: StudyIdentity,
    *,
    sequence: str = "FLAIR",
    series_number: int = 1,
    slices: int = 8,
    spacing: float = 5.0,
) -> list[Dataset]:
    """An axial MR series of ``slices`` slices in ``study``, sorted by position."""
    template = _template()
    base = template.pixel_array.astype(np.float32)
    series_uid = generate_uid()
    out = []
    for i in range(slices):
        ds = copy.deepcopy(template)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        for key, value in study.to_dataset().items():
            ds[key] = value
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = series_number
        ds.SeriesDescription = f"AX {sequence}"
        ds.InstanceNumber = i + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100.0, -120.0, -40.0 + i * spacing]
        ds.SliceLocation = -40.0 + i * spacing
        ds.SliceThickness = spacing
        ds.PixelSpacing = [3.75, 3.75]  # a 240 mm field of view, as for a brain
        ds.BodyPartExamined = "HEAD"
        scale = 0.6 + 0.4 * np.sin(np.pi * (i + 0.5) / slices)
        pixels = np.clip(base * scale, 0, 4095).astype(np.uint16)
        ds.PixelRepresentation = 0
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelData = pixels.tobytes()
        out.append(ds)
    return out


def write_series(datasets: Sequence[Dataset], folder: Path) -> list[Path]:
    """Save a series as ``folder/<SOPInstanceUID>.dcm`` files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def series_reference(sequence: str, datasets: Sequence[Dataset]) -> SeriesReference:
    return SeriesReference(
        sequence=sequence,
        series_instance_uid=str(datasets[0].SeriesInstanceUID),
        sop_class_uid=str(datasets[0].SOPClassUID),
        sop_instance_uids=tuple(str(ds.SOPInstanceUID) for ds in datasets),
    )


def gaussian_blob(
    shape: tuple[int, int, int], centre: tuple[float, float, float], sigma: float = 4.0
) -> np.ndarray:
    """A 3D Gaussian (slices, rows, columns) peaking at ``centre`` (voxel indices)."""
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    d2 = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
    return np.exp(-d2 / (2 * sigma**2)).astype(np.float32)


def abnormal_result(
    study: StudyIdentity, series: dict[str, list[Dataset]], **extra: object
) -> AnalysisResult:
    """Several findings, two present, triage abnormal."""
    refs = tuple(series_reference(seq, ds) for seq, ds in series.items())
    seqs = tuple(series)
    return AnalysisResult(
        study=study,
        model=MODEL,
        series=refs,
        findings=(
            FindingResult(
                finding_id="acute_infarct",
                display_name="Acute infarct",
                score=0.81,
                threshold=0.42,
                present=True,
                sequences=seqs[-1:],
            ),
            FindingResult(
                finding_id="haemorrhage",
                display_name="Haemorrhage",
                score=0.12,
                threshold=0.5,
                present=False,
                sequences=seqs,
            ),
            FindingResult(
                finding_id="meningioma",
                display_name="Meningioma",
                score=0.66,
                threshold=0.55,
                present=True,
                sequences=seqs[:1],
            ),
            FindingResult(
                finding_id="mass_effect",
                display_name="Mass effect",
                score=0.2,
                threshold=0.4,
                present=False,
                sequences=seqs,
            ),
        ),
        triage=TriageResult(abnormal=True, score=0.9, threshold=0.35),
        **extra,  # type: ignore[arg-type]
    )


def with_user_query(result: AnalysisResult, finding_id: str = "arachnoid_cyst") -> AnalysisResult:
    """``result`` plus a user query's finding: scored, not called (no threshold)."""
    query = FindingResult(
        finding_id=finding_id,
        display_name=f"User query: {finding_id}",
        score=0.37,
        threshold=None,
        present=None,
        sequences=tuple(s.sequence for s in result.series),
    )
    return result.model_copy(update={"findings": (*result.findings, query)})


def normal_result(study: StudyIdentity, series: dict[str, list[Dataset]]) -> AnalysisResult:
    """One finding absent, triage normal."""
    refs = tuple(series_reference(seq, ds) for seq, ds in series.items())
    return AnalysisResult(
        study=study,
        model=MODEL,
        series=refs,
        findings=(
            FindingResult(
                finding_id="hydrocephalus",
                display_name="Hydrocephalus",
                score=0.05,
                threshold=0.3,
                present=False,
                sequences=tuple(series),
            ),
        ),
        triage=TriageResult(abnormal=False, score=0.1, threshold=0.35),
    )


def not_analysed_result(
    study: StudyIdentity, series: dict[str, list[Dataset]] | None = None
) -> NotAnalysedResult:
    refs = tuple(series_reference(seq, ds) for seq, ds in (series or {}).items())
    return NotAnalysedResult(
        study=study,
        model=MODEL,
        series=refs,
        reason="No usable T1, T2 or FLAIR series: only a localizer was received",
    )
