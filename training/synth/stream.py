"""Streaming path for training: synthetic studies prepared without DICOM on disk.

Each study is generated in memory (only the series of the wanted sequences are
rendered, see ``restrict_to`` of :func:`~training.synth.study.generate_study`),
its pydicom datasets go through exactly the code inference uses —
:func:`pipeline.series.select_series` (classification and selection from the
headers) then :func:`pipeline.model.inputs.study_inputs` (loading with
:func:`pipeline.volume.load_series`, diffusion split / ADC, and
:func:`pipeline.preprocess.preprocess`) — and only the preprocessed tensors are
kept. :func:`stream_to_cache` writes them in the ``prepare`` cache format
(:mod:`training.data.cache`), so training reads a streamed cache and a cache
prepared from DICOM files the same way; a test checks that both give the same
tensors for the same study.

Size: a cached study is ``len(sequences) x prod(output_shape) x 2`` bytes
(float16); with ALIGN's 120^3 that is 3.5 MB per sequence, so up to two
sequences per cache keep a study under 10 MB (one CNN is trained per sequence).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_node.errors import ConfigError
from pipeline.model.inputs import StudyInputs, study_inputs
from pipeline.preprocess import PreprocessSpec
from pipeline.series import select_series
from training.data.cache import (
    CACHE_FILE,
    STUDIES_FILE,
    CachedStudy,
    append_jsonl,
    iter_jsonl,
    read_cache,
    save_tensor,
    write_cache_meta,
)
from training.data.prepare import PrepareConfig, PrepareSummary, assign_split
from training.synth.dataset import single_threaded, study_seed, study_site
from training.synth.reports import Report
from training.synth.sites import SITES, get_site
from training.synth.study import Size, generate_study

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedStudy:
    """A synthetic study reduced to what training needs.

    Attributes:
        study_uid, accession, site, seed: identity.
        labels: truth: ``normal``, ``abnormal`` and one 0/1 per finding.
        report: the report (full text and sections).
        patient_key: hash of the synthetic patient ID (for splitting).
        inputs: preprocessed tensors per sequence, and the sequences skipped with why.
    """

    study_uid: str
    accession: str
    site: str
    seed: int
    labels: dict[str, int]
    report: Report
    patient_key: str
    inputs: StudyInputs

    def nbytes(self, bytes_per_value: int = 2) -> int:
        """Size of the tensors as cached (float16 by default)."""
        return sum(item.tensor.size * bytes_per_value for item in self.inputs.inputs.values())


def prepare_study(
    seed: int,
    site: str | None,
    spec: PreprocessSpec,
    sequences: Sequence[str],
    *,
    size: Size = "full",
) -> PreparedStudy:
    """Generate one study in memory and run it through the inference input code."""
    study = generate_study(seed, site, size=size, restrict_to=list(sequences))
    datasets = [ds for series in study.series for ds in series.datasets]
    selection = select_series(datasets)
    inputs = study_inputs(selection, spec, list(sequences))
    labels = {f: int(v) for f, v in study.findings.items()}
    labels["normal"] = int(study.normal)
    labels["abnormal"] = int(not study.normal)
    return PreparedStudy(
        study_uid=study.study_uid,
        accession=study.accession,
        site=study.site,
        seed=seed,
        labels=labels,
        report=study.report,
        patient_key=hashlib.sha256(study.header.patient_id.encode()).hexdigest()[:16],
        inputs=inputs,
    )


def _prepare_job(args: tuple[int, str, PreprocessSpec, tuple[str, ...], Size]) -> PreparedStudy:
    seed, site, spec, sequences, size = args
    return prepare_study(seed, site, spec, sequences, size=size)


def iter_prepared(
    seed: int,
    n_studies: int,
    sites: Sequence[str] | None,
    spec: PreprocessSpec,
    sequences: Sequence[str],
    *,
    workers: int = 1,
    start: int = 0,
    size: Size = "full",
) -> Iterator[PreparedStudy]:
    """Prepared studies ``start .. start + n_studies - 1`` of a synthetic dataset, in order.

    Study ``i`` is the same study :func:`~training.synth.dataset.generate_dataset`
    writes for the same ``seed`` and ``sites`` (same seed derivation and site cycle).
    """
    chosen = list(sites) if sites else list(SITES)
    for s in chosen:
        get_site(s)
    if n_studies < 0:
        raise ConfigError(f"n_studies {n_studies} is negative")
    jobs = [
        (study_seed(seed, i), study_site(chosen, i), spec, tuple(sequences), size)
        for i in range(start, start + n_studies)
    ]
    if workers <= 1:
        for job in jobs:
            yield _prepare_job(job)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=single_threaded) as pool:
        yield from pool.map(_prepare_job, jobs, chunksize=1)


def stream_to_cache(
    out_dir: Path,
    n_studies: int,
    seed: int,
    sites: Sequence[str] | None,
    cfg: PrepareConfig | None = None,
    *,
    workers: int = 1,
    size: Size = "full",
) -> PrepareSummary:
    """Write a training cache (``prepare`` format) of synthetic studies, no DICOM on disk.

    Resumable: studies already in ``studies.jsonl`` are not made again. A cache
    may be filled in parts (e.g. the training sites, then a held-out site with
    another seed and count): each part is listed under ``source.synthetic`` in
    ``cache.json``, and a part made with other preprocessing, sequences or test
    sites is refused, since one cache must hold tensors made one way.

    Raises:
        ConfigError: the cache already holds studies made another way.
    """
    cfg = cfg or PrepareConfig()
    meta: dict[str, Any] = {
        "preprocessing": cfg.spec.model_dump(mode="json"),
        "sequences": list(cfg.sequences),
        "test_sites": list(cfg.test_sites),
    }
    part = {"seed": seed, "sites": list(sites or SITES), "size": size, "studies": n_studies}
    parts = [part]
    if (out_dir / CACHE_FILE).is_file():
        existing = read_cache(out_dir).meta
        for field, value in meta.items():
            if existing.get(field) != value:
                raise ConfigError(
                    f"cache {out_dir} holds studies made with {field}={existing.get(field)!r}, "
                    f"not {value!r}: use another cache folder"
                )
        earlier = existing.get("source", {}).get("synthetic", [])
        earlier = earlier if isinstance(earlier, list) else [earlier]
        parts = [p for p in earlier if p != part] + [part]
    write_cache_meta(out_dir, {**meta, "source": {"synthetic": parts}})
    summary = PrepareSummary(studies_found=n_studies)
    done = {row["key"] for row in iter_jsonl(out_dir / STUDIES_FILE)}
    for prepared in iter_prepared(
        seed, n_studies, sites, cfg.spec, cfg.sequences, workers=workers, size=size
    ):
        key = prepared.study_uid
        if key in done:
            summary.resumed += 1
            continue
        for seq in prepared.inputs.skipped:
            summary.sequences_skipped[seq] += 1
        if not prepared.inputs.inputs:
            summary.skipped["no usable sequence"] += 1
            continue
        folder = hashlib.sha256(key.encode()).hexdigest()[:16]
        paths = {}
        for seq, item in prepared.inputs.inputs.items():
            rel = f"tensors/{folder}/{seq}.npy"
            save_tensor(out_dir / rel, item.tensor)
            paths[seq] = rel
        split = assign_split(prepared.patient_key, prepared.site, cfg)
        row = CachedStudy(
            key=key,
            split=split,
            findings=prepared.report.findings_section,
            impression=prepared.report.impression_section,
            sequences=paths,
            site=prepared.site,
            patient_key=hashlib.sha256(prepared.patient_key.encode()).hexdigest()[:16],
            accession=prepared.accession,
            study_uid=key,
            labels=dict(prepared.labels),
        )
        append_jsonl(out_dir / STUDIES_FILE, [row.to_json()])
        summary.cached += 1
        summary.splits[split] += 1
        summary.sites[prepared.site] += 1
    logger.info("streamed synthetic cache: %s", summary.as_dict())
    return summary
