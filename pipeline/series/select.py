"""Choose the best series of each class in a study, deterministically and with reasons.

Preference order, as a hanging protocol would: an original acquisition over a
derived one (except ADC, which is always derived), axial or 3D isotropic over
other planes, for T1C the latest post-contrast acquisition, then greater
coverage (in steps of :data:`COVERAGE_STEP_MM`), thinner slices, and finally
the lowest series number / UID so that ties always break the same way. For DWI
a series holding a b≈1000 is required first; for SWI the processed SWI image
comes before the magnitude and the minIP, and phase images are never chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from dicom_node.errors import SeriesError
from pipeline.series.classes import SequenceClass
from pipeline.series.classify import Classification, classify_study
from pipeline.series.headers import B_VALUE_WINDOW, SeriesHeader, header_from_datasets
from pipeline.series.vocabulary import PHASE_TOKENS
from pipeline.study_manifest import SeriesFiles, scan_study

logger = logging.getLogger(__name__)

#: Coverage differences smaller than this (mm) do not count; thinner slices decide.
COVERAGE_STEP_MM = 20.0

#: Classes a study selection picks a series for.
SELECTABLE = (
    SequenceClass.T1,
    SequenceClass.T1C,
    SequenceClass.T2,
    SequenceClass.FLAIR,
    SequenceClass.DWI,
    SequenceClass.ADC,
    SequenceClass.SWI,
)


@dataclass(frozen=True)
class SeriesEntry:
    """One series of the study with its header, class and sources.

    ``sources`` are file paths when read from disk, else the datasets.
    """

    header: SeriesHeader
    classification: Classification
    sources: Sequence[Path] | Sequence[Dataset]

    @property
    def series_uid(self) -> str:
        """Series Instance UID."""
        return self.header.series_uid


@dataclass(frozen=True)
class SelectedSeries:
    """The series chosen for one class and why."""

    sequence: SequenceClass
    entry: SeriesEntry
    explanation: str

    @property
    def series_uid(self) -> str:
        """Series Instance UID of the chosen series."""
        return self.entry.series_uid

    @property
    def files(self) -> Sequence[Path] | Sequence[Dataset]:
        """The chosen series' files (or datasets), ready for ``load_series``."""
        return self.entry.sources


@dataclass
class StudySelection:
    """Every series of a study with its class, and the chosen series per class."""

    study_uid: str
    series: list[SeriesEntry] = field(default_factory=list)
    chosen: dict[SequenceClass, SelectedSeries] = field(default_factory=dict)

    def get(self, sequence: SequenceClass) -> SelectedSeries | None:
        """The chosen series of ``sequence``, or ``None`` when the study has none."""
        return self.chosen.get(sequence)

    def is_selected(self, series_uid: str) -> list[SequenceClass]:
        """The classes ``series_uid`` was chosen for (empty when not chosen)."""
        return [seq for seq, sel in self.chosen.items() if sel.series_uid == series_uid]

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly view (no patient data)."""
        return {
            "study_uid": self.study_uid,
            "series": [
                {
                    "series_uid": e.series_uid,
                    "series_number": e.header.series_number,
                    "description": e.header.series_description,
                    "classification": e.classification.to_dict(),
                    "selected_for": [s.value for s in self.is_selected(e.series_uid)],
                }
                for e in self.series
            ],
            "chosen": {
                seq.value: {"series_uid": sel.series_uid, "explanation": sel.explanation}
                for seq, sel in self.chosen.items()
            },
        }


def _coverage(header: SeriesHeader) -> float:
    """Extent (mm) of the stack along the slice direction (approximate)."""
    thickness = header.slice_thickness or 1.0
    return header.n_frames * thickness


def is_phase(entry: SeriesEntry) -> bool:
    """The series holds phase images (never given to a model)."""
    return bool(set(entry.header.image_type) & set(PHASE_TOKENS))


def _swi_rank(entry: SeriesEntry) -> int:
    """0 processed SWI, 1 magnitude, 2 minimum intensity projection."""
    image_type = set(entry.header.image_type)
    text = entry.header.description.lower()
    if image_type & {"MNIP", "MIN IP", "MINIP"} or "mip" in text:
        return 2
    if entry.classification.derived and (
        "SWI" in image_type or "swi" in text or "swan" in text or "swip" in text
    ):
        return 0
    if "SWI" in image_type and "M" not in image_type:
        return 0
    return 1


def _score(entry: SeriesEntry, sequence: SequenceClass) -> tuple[float, ...]:
    """A sort key: smaller is better."""
    header, cls = entry.header, entry.classification
    original = 0.0 if sequence is SequenceClass.ADC or not (cls.derived or cls.reformatted) else 1.0
    plane = 0.0 if header.plane == "AXIAL" or header.is_isotropic else 1.0
    key: list[float] = []
    if sequence is SequenceClass.DWI:
        has_high = any(B_VALUE_WINDOW[0] <= b <= B_VALUE_WINDOW[1] for b in header.b_values)
        key.append(0.0 if has_high or not header.b_values else 1.0)
    if sequence is SequenceClass.SWI:
        key.append(float(_swi_rank(entry)))
    key.extend([original, plane])
    if sequence is SequenceClass.T1C:
        time = header.acquisition_time
        key.append(-time if time is not None else 0.0)
        key.append(-float(header.series_number or 0))
    key.append(-round(_coverage(header) / COVERAGE_STEP_MM))
    key.append(header.slice_thickness if header.slice_thickness is not None else 99.0)
    key.append(float(header.series_number) if header.series_number is not None else 1e9)
    return tuple(key)


def _explain(best: SeriesEntry, others: list[SeriesEntry], sequence: SequenceClass) -> str:
    h = best.header
    traits = [
        "derived" if best.classification.derived else "original",
        "3D isotropic" if h.is_isotropic else h.plane.lower(),
        f"{h.n_frames} images",
        f"{h.slice_thickness:g} mm slices" if h.slice_thickness else "slice thickness unknown",
    ]
    if sequence is SequenceClass.T1C and h.acquisition_time is not None:
        traits.append("latest post-contrast" if others else "only post-contrast")
    text = f"series {h.series_number} {h.series_description!r}: {', '.join(traits)}"
    if others:
        beaten = ", ".join(
            f"{o.header.series_number} {o.header.series_description!r}" for o in others
        )
        text += f"; preferred over {beaten}"
    return text


def select_from_entries(study_uid: str, entries: list[SeriesEntry]) -> StudySelection:
    """Choose one series per class among already classified entries."""
    selection = StudySelection(study_uid=study_uid, series=entries)
    for sequence in SELECTABLE:
        candidates = [
            e for e in entries if e.classification.sequence is sequence and not is_phase(e)
        ]
        if not candidates:
            continue
        ranked = sorted(candidates, key=lambda e: (_score(e, sequence), e.series_uid))
        best = ranked[0]
        selection.chosen[sequence] = SelectedSeries(
            sequence, best, _explain(best, ranked[1:], sequence)
        )
        logger.debug("study %s: %s -> series %s", study_uid, sequence.value, best.header.series_uid)
    return selection


def select_series(
    study: str | Path | Mapping[str, Sequence[Path | Dataset]] | Sequence[Dataset],
) -> StudySelection:
    """Classify every series of a study and choose the best one per class.

    Args:
        study: a study folder, a mapping series UID -> files or datasets, or a
            flat list of datasets.

    Raises:
        SeriesError: nothing DICOM found, or series of several studies mixed.
    """
    grouped: dict[str, SeriesFiles] = scan_study(study)
    headers = {uid: header_from_datasets(files.headers) for uid, files in grouped.items()}
    classes = classify_study(list(headers.values()))
    entries = sorted(
        (
            SeriesEntry(headers[uid], classes[headers[uid].series_uid], files.sources)
            for uid, files in grouped.items()
        ),
        key=lambda e: (
            e.header.series_number if e.header.series_number is not None else 1e9,
            e.series_uid,
        ),
    )
    studies = sorted({e.header.study_uid for e in entries if e.header.study_uid})
    if len(studies) > 1:
        raise SeriesError(
            f"the series belong to {len(studies)} studies (StudyInstanceUID {studies}); "
            "select series one study at a time"
        )
    return select_from_entries(studies[0] if studies else "", entries)
