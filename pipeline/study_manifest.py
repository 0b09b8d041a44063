"""A study folder -> its series -> their files (headers read without pixel data)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from dicom_node.errors import SeriesError

logger = logging.getLogger(__name__)


@dataclass
class SeriesFiles:
    """The instances of one series: header datasets and, when read from disk, their paths."""

    series_uid: str
    headers: list[Dataset] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    @property
    def sources(self) -> Sequence[Path] | Sequence[Dataset]:
        """What :func:`pipeline.volume.load_series` should be given: paths, else datasets."""
        return self.paths if len(self.paths) == len(self.headers) else self.headers


def scan_study(
    source: str | Path | Mapping[str, Sequence[Path | Dataset]] | Sequence[Dataset],
) -> dict[str, SeriesFiles]:
    """Group the instances of a study by Series Instance UID.

    Args:
        source: a folder (searched recursively; non-DICOM files are skipped), a
            mapping series UID -> paths or datasets, or a flat list of datasets.

    Raises:
        SeriesError: when nothing DICOM is found.
    """
    series: dict[str, SeriesFiles] = {}

    def add(ds: Dataset, path: Path | None) -> None:
        uid = str(ds.get("SeriesInstanceUID", ""))
        entry = series.setdefault(uid, SeriesFiles(uid))
        entry.headers.append(ds)
        if path is not None:
            entry.paths.append(path)

    def read(path: Path) -> Dataset | None:
        try:
            return pydicom.dcmread(str(path), stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError):
            logger.debug("skipping non-DICOM file %s", path.name)
            return None

    if isinstance(source, str | Path):
        root = Path(source)
        if not root.exists():
            raise SeriesError(f"study path {root} does not exist")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            ds = read(path)
            if ds is not None and "SeriesInstanceUID" in ds:
                add(ds, path)
    elif isinstance(source, Mapping):
        for items in source.values():
            for item in items:
                if isinstance(item, Dataset):
                    add(item, None)
                else:
                    ds = read(Path(item))
                    if ds is not None:
                        add(ds, Path(item))
    else:
        for ds in source:
            add(ds, None)
    if not series:
        raise SeriesError(f"no DICOM series found in {source!r}")
    return series
