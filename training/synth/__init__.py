"""Synthetic brain MRI studies with radiology reports (issue 3).

Public API::

    from training.synth import (
        SITES, FINDINGS, SEQUENCES,
        SyntheticStudy, SyntheticSeries, FindingMask, Report, Sentence,
        generate_study, write_study, generate_dataset, generate_report,
    )

* :func:`generate_study` (seed, site=None, findings=None, size="full") -> SyntheticStudy,
  deterministic in the seed; ``study.series[i].datasets`` are complete pydicom MR
  Image Storage datasets (one per slice), ``study.series[i].sequence`` the truth
  class, ``.direction/.origin/.spacing`` the truth geometry; ``study.masks`` the
  truth masks in patient LPS; ``study.report`` the report with per-sentence truth.
* :func:`write_study` writes ``DIR/dicom/<accession>/<NNN_series>/IM_*.dcm``.
* :func:`generate_dataset` writes DICOM, ``reports.jsonl``, ``labels.csv``, ``masks/``.
* :func:`generate_report` (findings, rng) writes a report without images.
"""

from __future__ import annotations

from training.synth.dataset import generate_dataset
from training.synth.findings import FINDINGS, FindingDescriptor
from training.synth.reports import Report, Sentence, generate_report
from training.synth.sites import SITES
from training.synth.study import (
    SEQUENCES,
    FindingMask,
    SyntheticSeries,
    SyntheticStudy,
    generate_study,
    write_study,
)

__all__ = [
    "FINDINGS",
    "SEQUENCES",
    "SITES",
    "FindingDescriptor",
    "FindingMask",
    "Report",
    "Sentence",
    "SyntheticSeries",
    "SyntheticStudy",
    "generate_dataset",
    "generate_report",
    "generate_study",
    "write_study",
]
