"""From a study's series selection to the model's input tensors, one per sequence.

The same function serves ``prepare`` (training caches) and the analysis task
(inference), so both see identical volumes: the chosen series of each sequence
is loaded (:func:`pipeline.volume.load_series`), diffusion series give their
b≈1000 trace (``DWI``) and their ADC map (derived series, else computed), and
every volume goes through :func:`pipeline.preprocess.preprocess` with the
bundle's (or cache's) :class:`~pipeline.preprocess.PreprocessSpec`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from dicom_node.errors import DicomNodeError
from pipeline.preprocess import PreprocessSpec, preprocess
from pipeline.series import SequenceClass, StudySelection
from pipeline.series.dwi import diffusion_volumes
from pipeline.volume import Volume, load_series

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceInput:
    """One sequence's preprocessed input and where it came from."""

    sequence: str
    series_uid: str
    tensor: NDArray[np.float32]
    """(1, D, H, W) float32"""
    explanation: str


@dataclass
class StudyInputs:
    """A study's model inputs, and each wanted sequence that could not be made, with why."""

    study_uid: str
    inputs: dict[str, SequenceInput] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _datasets(files: Sequence[Path] | Sequence[Dataset]) -> list[Dataset]:
    return [f if isinstance(f, Dataset) else pydicom.dcmread(str(f)) for f in files]


def sequence_volume(selection: StudySelection, sequence: str) -> tuple[Volume, str, str]:
    """(volume, series UID, explanation) of one sequence, before preprocessing.

    Raises:
        LookupError: the study has no usable series for ``sequence``.
        ValueError: ``sequence`` is not a :class:`SequenceClass` name.
        DicomNodeError: the series cannot be loaded.
    """
    wanted = SequenceClass(sequence)
    if wanted in (SequenceClass.DWI, SequenceClass.ADC):
        dwi = selection.get(SequenceClass.DWI)
        adc_sel = selection.get(SequenceClass.ADC)
        if wanted is SequenceClass.ADC and adc_sel is not None:
            return load_series(adc_sel.files), adc_sel.series_uid, adc_sel.explanation
        if dwi is None:
            raise LookupError(f"no {sequence} series (and no DWI series to derive it from)")
        adc_data = _datasets(adc_sel.files) if adc_sel is not None else None
        parts = diffusion_volumes(_datasets(dwi.files), adc_data)
        if wanted is SequenceClass.DWI:
            return parts.trace, dwi.series_uid, f"{dwi.explanation}; {parts.explanation}"
        if parts.adc is None:
            raise LookupError(f"no ADC: {parts.explanation}")
        return parts.adc, dwi.series_uid, parts.explanation
    chosen = selection.get(wanted)
    if chosen is None:
        raise LookupError(f"no {sequence} series in the study")
    return load_series(chosen.files), chosen.series_uid, chosen.explanation


_volume = sequence_volume  # earlier private name, still imported by pipeline.study_analysis


def study_inputs(
    selection: StudySelection, spec: PreprocessSpec, sequences: Sequence[str]
) -> StudyInputs:
    """Preprocessed inputs of ``sequences`` (names of :class:`SequenceClass`) for one study.

    A sequence the study lacks, or whose series cannot be loaded, is recorded in
    ``skipped`` with the reason; the others are still made.
    """
    result = StudyInputs(study_uid=selection.study_uid)
    for sequence in sequences:
        try:
            volume, series_uid, explanation = sequence_volume(selection, sequence)
            tensor = preprocess(volume, spec)
        except (LookupError, ValueError, DicomNodeError) as exc:
            result.skipped[sequence] = str(exc)
            logger.info("study %s: %s skipped: %s", selection.study_uid, sequence, exc)
            continue
        result.inputs[sequence] = SequenceInput(sequence, series_uid, tensor, explanation)
    return result
