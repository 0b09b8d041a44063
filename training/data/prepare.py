"""``prepare``: pair an archive's studies with their reports and cache preprocessed tensors.

For every study under the DICOM folder: find its report (by Study Instance UID,
else accession number), select the best series of each sequence
(:func:`pipeline.series.select_series`), make the model inputs with the shared
preprocessing (:func:`pipeline.model.inputs.study_inputs`) and write them to the
cache (:mod:`training.data.cache`). Studies are assigned to train/val/test by a
hash of the patient key (so one patient never spans two splits); whole sites can
be held out as test. Finished studies are appended as they complete, so a
second run resumes. The summary counts what was skipped and why.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from dicom_node.errors import DicomNodeError, TrainingError
from pipeline.model.inputs import study_inputs
from pipeline.preprocess import PreprocessSpec
from pipeline.series import select_series
from training.data.cache import (
    SKIPPED_FILE,
    STUDIES_FILE,
    TENSOR_DIR,
    CachedStudy,
    append_jsonl,
    iter_jsonl,
    save_tensor,
    write_cache_meta,
)
from training.data.reports import ReportRecord, load_reports

logger = logging.getLogger(__name__)

DEFAULT_SEQUENCES = ("T1", "T1C", "T2", "FLAIR", "DWI", "ADC", "SWI")
_SCAN_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber", "PatientID"]


@dataclass
class PrepareConfig:
    """Options of :func:`prepare_cache`."""

    spec: PreprocessSpec = field(default_factory=PreprocessSpec)
    sequences: tuple[str, ...] = DEFAULT_SEQUENCES
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    test_sites: tuple[str, ...] = ()
    """Every study of these sites goes to the test split (site held out of training)."""
    labels_file: Path | None = None
    """Optional CSV of known labels (study_uid/accession + 0/1 finding columns)."""
    seed: int = 0
    limit: int | None = None
    workers: int = 1
    """Processes that select, load and preprocess studies (each with one torch thread)."""


@dataclass
class PrepareSummary:
    """What ``prepare`` did."""

    studies_found: int = 0
    cached: int = 0
    resumed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    sequences_skipped: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    sites: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "studies_found": self.studies_found,
            "cached": self.cached,
            "resumed": self.resumed,
            "skipped": dict(self.skipped),
            "sequences_skipped": dict(self.sequences_skipped),
            "splits": dict(self.splits),
            "sites": dict(self.sites),
        }


@dataclass
class _Study:
    study_uid: str
    accession: str | None
    patient_hash: str | None
    series: dict[str, list[Path]] = field(default_factory=dict)


def scan_archive(root: Path) -> dict[str, _Study]:
    """Group the DICOM files under ``root`` by study and series (headers only)."""
    studies: dict[str, _Study] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_SCAN_TAGS)
        except (OSError, pydicom.errors.InvalidDicomError):
            continue
        uid = str(ds.get("StudyInstanceUID", ""))
        if not uid:
            continue
        study = studies.get(uid)
        if study is None:
            patient = str(ds.get("PatientID", "")) or None
            study = studies[uid] = _Study(
                study_uid=uid,
                accession=str(ds.get("AccessionNumber", "")) or None,
                # the patient ID is only hashed, never stored or logged
                patient_hash=hashlib.sha256(patient.encode()).hexdigest()[:16] if patient else None,
            )
        study.series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(path)
    return studies


def read_label_file(path: Path) -> dict[str, dict[str, int]]:
    """Known labels by study UID and by accession: key -> {column: 0/1}."""
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            labels = {}
            for column, value in row.items():
                if column in ("study_uid", "accession", "site", "normal") or value in (None, ""):
                    continue
                try:
                    labels[column] = int(float(value))
                except ValueError:
                    continue
            for key in (row.get("study_uid"), row.get("accession")):
                if key:
                    out[key] = labels
    return out


def assign_split(patient_key: str, site: str | None, cfg: PrepareConfig) -> str:
    """train / val / test from a stable hash of the patient key (sites held out -> test)."""
    if site is not None and site in cfg.test_sites:
        return "test"
    digest = hashlib.sha256(f"{cfg.seed}:{patient_key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    # with held-out sites there is no random test share: the patients it would
    # have taken train (they used to go to val, making it test + val fraction)
    test_share = 0.0 if cfg.test_sites else cfg.test_fraction
    if u < test_share:
        return "test"
    if u < test_share + cfg.val_fraction:
        return "val"
    return "train"


def _find_report(
    study: _Study, by_uid: dict[str, ReportRecord], by_accession: dict[str, ReportRecord]
) -> ReportRecord | None:
    if study.study_uid in by_uid:
        return by_uid[study.study_uid]
    if study.accession and study.accession in by_accession:
        return by_accession[study.accession]
    return None


def _done_keys(out_dir: Path) -> set[str]:
    done = {row["key"] for row in iter_jsonl(out_dir / STUDIES_FILE)}
    done |= {row["key"] for row in iter_jsonl(out_dir / SKIPPED_FILE) if "sequence" not in row}
    return done


def prepare_cache(
    dicom_dir: Path, reports_file: Path, out_dir: Path, cfg: PrepareConfig | None = None
) -> PrepareSummary:
    """Build (or resume) a training cache; returns the summary (also in ``summary.json``)."""
    cfg = cfg or PrepareConfig()
    reports = load_reports(reports_file)
    if not reports:
        raise TrainingError(f"no reports in {reports_file}")
    known = read_label_file(cfg.labels_file) if cfg.labels_file else {}
    by_uid = {r.study_uid: r for r in reports if r.study_uid}
    by_accession = {r.accession: r for r in reports if r.accession}
    studies = scan_archive(dicom_dir)
    if not studies:
        raise TrainingError(f"no DICOM studies found under {dicom_dir}")
    write_cache_meta(
        out_dir,
        {
            "preprocessing": cfg.spec.model_dump(mode="json"),
            "sequences": list(cfg.sequences),
            "test_sites": list(cfg.test_sites),
            "source": {"dicom": str(dicom_dir), "reports": str(reports_file)},
        },
    )
    summary = PrepareSummary(studies_found=len(studies))
    done = _done_keys(out_dir)
    todo = [s for s in studies.values() if s.study_uid not in done]
    summary.resumed = len(studies) - len(todo)
    if cfg.limit is not None:
        todo = todo[: cfg.limit]
    jobs: list[tuple[_Study, ReportRecord]] = []
    for study in todo:
        report = _find_report(study, by_uid, by_accession)
        if report is None:
            _skip(
                out_dir,
                study.study_uid,
                "no report: no Study Instance UID or accession match",
                summary,
            )
        elif not (report.findings or report.impression):
            _skip(out_dir, study.study_uid, "empty report", summary)
        else:
            jobs.append((study, report))
    progress = tqdm(total=len(jobs), desc="prepare", unit="study")
    if cfg.workers > 1:
        with ProcessPoolExecutor(cfg.workers, initializer=_one_thread) as pool:
            results = pool.map(_make_inputs, [(s, cfg.spec, cfg.sequences) for s, _ in jobs])
            for (study, report), result in zip(jobs, results, strict=True):
                _store(study, report, result, known, out_dir, cfg, summary)
                progress.update(1)
    else:
        for study, report in jobs:
            _store(
                study,
                report,
                _make_inputs((study, cfg.spec, cfg.sequences)),
                known,
                out_dir,
                cfg,
                summary,
            )
            progress.update(1)
    progress.close()
    for row in iter_jsonl(out_dir / STUDIES_FILE):
        summary.splits[row["split"]] += 1
        summary.sites[row.get("site") or "unknown"] += 1
    (out_dir / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2), encoding="utf-8")
    logger.info("prepare summary: %s", summary.as_dict())
    return summary


def _skip(out_dir: Path, key: str, reason: str, summary: PrepareSummary) -> None:
    summary.skipped[reason.split(":")[0]] += 1
    append_jsonl(out_dir / SKIPPED_FILE, [{"key": key, "reason": reason}])
    logger.info("study %s skipped: %s", key, reason)


def _one_thread() -> None:
    torch.set_num_threads(1)


_Made = tuple[dict[str, NDArray[np.float32]], dict[str, str], str | None]
"""(sequence -> tensor, sequence -> reason skipped, study-level error)"""


def _make_inputs(job: tuple[_Study, PreprocessSpec, tuple[str, ...]]) -> _Made:
    """Select series and make the inputs of one study (runs in a worker process)."""
    study, spec, sequences = job
    try:
        selection = select_series(study.series)
    except DicomNodeError as exc:
        return {}, {}, f"series selection failed: {exc}"
    inputs = study_inputs(selection, spec, sequences)
    return {s: i.tensor for s, i in inputs.inputs.items()}, inputs.skipped, None


def _store(
    study: _Study,
    report: ReportRecord,
    made: _Made,
    known: dict[str, dict[str, int]],
    out_dir: Path,
    cfg: PrepareConfig,
    summary: PrepareSummary,
) -> None:
    key = study.study_uid
    tensors, skipped, error = made
    if error is not None:
        _skip(out_dir, key, error, summary)
        return
    for seq, reason in skipped.items():
        summary.sequences_skipped[seq] += 1
        append_jsonl(out_dir / SKIPPED_FILE, [{"key": key, "sequence": seq, "reason": reason}])
    if not tensors:
        _skip(out_dir, key, "no usable sequence: " + "; ".join(skipped.values()), summary)
        return
    folder = hashlib.sha256(key.encode()).hexdigest()[:16]
    paths = {}
    for seq, tensor in tensors.items():
        rel = f"{TENSOR_DIR}/{folder}/{seq}.npy"
        save_tensor(out_dir / rel, tensor)
        paths[seq] = rel
    labels = dict(report.labels) or known.get(key) or known.get(study.accession or "", {})
    patient = report.patient_key or study.patient_hash or key
    row = CachedStudy(
        key=key,
        split=assign_split(patient, report.site, cfg),
        findings=report.findings,
        impression=report.impression,
        sequences=paths,
        site=report.site,
        patient_key=hashlib.sha256(patient.encode()).hexdigest()[:16],
        accession=study.accession or report.accession,
        study_uid=key,
        labels=dict(labels),
    )
    append_jsonl(out_dir / STUDIES_FILE, [row.to_json()])
    summary.cached += 1


def sequences_arg(value: str | Iterable[str]) -> tuple[str, ...]:
    """Parse ``"T2,FLAIR"`` (or an iterable) into a tuple of sequence names."""
    items: Sequence[str] = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for s in items if s.strip())
