"""The tensor cache written by ``prepare`` and read by training and evaluation.

Layout of a cache folder::

    cache.json        {"format": 1, "preprocessing": {...}, "sequences": [...], ...}
    studies.jsonl     one JSON object per usable study (:class:`CachedStudy`)
    skipped.jsonl     {"key": ..., "reason": ...} per study or series left out
    tensors/<k>/<SEQ>.npy   float16 (1, D, H, W) preprocessed volumes

``studies.jsonl`` is appended one line per finished study, so an interrupted
``prepare`` resumes where it stopped. Keys are Study Instance UIDs (or accession
numbers); patient keys are only used for splitting and never logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dicom_node.errors import TrainingError
from training.data.reports import ReportRecord

CACHE_FORMAT = 1
CACHE_FILE = "cache.json"
STUDIES_FILE = "studies.jsonl"
SKIPPED_FILE = "skipped.jsonl"
TENSOR_DIR = "tensors"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CachedStudy:
    """One study of the cache: its report, split, site, labels and tensor files."""

    key: str
    split: str
    findings: str
    impression: str
    sequences: dict[str, str]
    """sequence -> tensor path relative to the cache folder"""
    site: str | None = None
    patient_key: str | None = None
    accession: str | None = None
    study_uid: str | None = None
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def report(self) -> ReportRecord:
        """The study's report as a :class:`ReportRecord`."""
        return ReportRecord(
            findings=self.findings,
            impression=self.impression,
            accession=self.accession,
            study_uid=self.study_uid,
            patient_key=self.patient_key,
            site=self.site,
            labels=dict(self.labels),
        )

    def to_json(self) -> str:
        """One ``studies.jsonl`` line."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class StudyCache:
    """A cache folder's description and studies."""

    root: Path
    meta: dict[str, Any]
    studies: list[CachedStudy]

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing spec the tensors were made with."""
        spec: dict[str, Any] = self.meta.get("preprocessing", {})
        return spec

    def require_preprocessing(self, expected: Mapping[str, Any], what: str) -> None:
        """Refuse a cache whose tensors were made another way than ``expected``.

        Both specs are read through :class:`pipeline.preprocess.PreprocessSpec`, so
        defaults and list/tuple spelling do not count as differences.

        Raises:
            TrainingError: the cache records no preprocessing, or another one
                (the differing fields are named).
        """
        from pipeline.preprocess import PreprocessSpec

        if not self.preprocessing:
            raise TrainingError(f"cache {self.root} records no preprocessing spec ({what})")
        made = PreprocessSpec.model_validate(self.preprocessing).model_dump(mode="json")
        wanted = PreprocessSpec.model_validate(dict(expected)).model_dump(mode="json")
        differ = {k: (made[k], wanted[k]) for k in sorted(made) if made[k] != wanted[k]}
        if differ:
            detail = "; ".join(f"{k}: cache {a!r}, {what} {b!r}" for k, (a, b) in differ.items())
            raise TrainingError(
                f"cache {self.root} was preprocessed differently from {what}: {detail}. "
                "Make the cache with the same spec (e.g. dicom-node-train synth --prepared "
                "... --preprocess-like BUNDLE)"
            )

    @property
    def sequences(self) -> list[str]:
        """Sequences present in at least one study, in a stable order."""
        seen: dict[str, None] = {}
        for s in self.studies:
            for seq in s.sequences:
                seen.setdefault(seq, None)
        return list(seen)

    def split(self, name: str) -> list[CachedStudy]:
        """Studies of one split."""
        if name not in SPLITS:
            raise TrainingError(f"split {name!r} is not one of {SPLITS}")
        return [s for s in self.studies if s.split == name]

    def sites(self, split: str | None = None) -> list[str]:
        """Sorted sites (of one split, or all)."""
        pool = self.studies if split is None else self.split(split)
        return sorted({s.site for s in pool if s.site})

    def load_tensor(self, study: CachedStudy, sequence: str) -> Tensor:
        """The float32 (1, D, H, W) tensor of one study's sequence."""
        return load_tensor(self.root / study.sequences[sequence])


def load_tensor(path: Path) -> Tensor:
    """A cached ``.npy`` volume as float32 tensor."""
    return torch.from_numpy(np.load(path).astype(np.float32, copy=False))


def save_tensor(path: Path, volume: np.ndarray | Tensor) -> None:
    """Write a (1, D, H, W) volume as float16 ``.npy`` (atomically)."""
    array = volume.detach().cpu().numpy() if isinstance(volume, Tensor) else np.asarray(volume)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array.astype(np.float16))
    tmp.replace(path)


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Objects of a JSONL file (nothing when it does not exist); a torn last line is ignored."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_cache(root: Path) -> StudyCache:
    """Read a cache folder written by :func:`training.data.prepare.prepare_cache`."""
    meta_path = root / CACHE_FILE
    if not meta_path.is_file():
        raise TrainingError(f"{meta_path} not found: is {root} a prepared cache?")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != CACHE_FORMAT:
        raise TrainingError(f"{meta_path}: format {meta.get('format')!r} is not {CACHE_FORMAT}")
    studies: dict[str, CachedStudy] = {}
    for row in iter_jsonl(root / STUDIES_FILE):
        study = CachedStudy(**row)
        studies[study.key] = study
    return StudyCache(root=root, meta=meta, studies=list(studies.values()))


def write_cache_meta(root: Path, meta: dict[str, Any]) -> None:
    """Write ``cache.json`` (format number added)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / CACHE_FILE).write_text(
        json.dumps({"format": CACHE_FORMAT, **meta}, indent=2, sort_keys=True), encoding="utf-8"
    )


def append_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> None:
    """Append rows (objects or ready JSON strings) to a JSONL file and flush."""
    with path.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row, sort_keys=True)) + "\n")
        handle.flush()


class SequenceDataset(Dataset[tuple[Tensor, Tensor]]):
    """(volume, target embedding) pairs of one sequence, for image-encoder training.

    Args:
        cache: the cache.
        studies: studies to use; those without ``sequence`` are skipped.
        sequence: sequence name.
        targets: study key -> target embedding (E,).
        transform: optional augmentation applied to each (1, D, H, W) volume.
    """

    def __init__(
        self,
        cache: StudyCache,
        studies: Sequence[CachedStudy],
        sequence: str,
        targets: dict[str, Tensor],
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.cache = cache
        self.transform = transform
        self.sequence = sequence
        self.items = [s for s in studies if sequence in s.sequences and s.key in targets]
        self.targets = targets

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        study = self.items[index]
        volume = self.cache.load_tensor(study, self.sequence)
        if self.transform is not None:
            volume = self.transform(volume)
        return volume, self.targets[study.key]
