"""The analysis task's body: ``run_analysis(study_uid, version, settings)``.

Called by :func:`pipeline.tasks.run_job` in the worker (queue ``gpu``). It reads
the study from the node's storage (``storage_dir/<StudyInstanceUID>``), analyses
it with the configured bundle (:mod:`pipeline.study_analysis`), writes the SR and
heatmap captures under ``outbox_dir/<StudyInstanceUID>/v<version>/`` and returns
what the task records and delivers (see :mod:`pipeline.tasks`).

* The bundle is loaded once per worker process and kept warm (cache keyed by
  path and device). ``settings.bundle``, else the demo bundle
  (:data:`DEMO_BUNDLE`, ``$NEUROTRIAGE_DEMO_BUNDLE`` overrides, empty disables)
  when it exists, else the study is "not analysed" with
  :data:`NO_BUNDLE_REASON` (no SR: nothing about the study is wrong).
* A study with no usable sequence is "not analysed" WITH an SR carrying the
  reason, delivered like any result.
* A re-analysis (``version`` > 1) references the latest earlier SR of the study
  (its SOP Instance UID is in the registry, its file in the outbox) in the new
  SR's Predecessor Documents Sequence.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dicom_node.config import NodeSettings
from dicom_node.errors import BundleError, ConfigError, DicomNodeError, TrainingError
from dicom_node.registry import AnalysisJob, Study, create_registry_engine, session_factory
from pipeline.model import ModelBundle, load_bundle
from pipeline.model.operating_points import resolve_operating_points
from pipeline.model.user_queries import read_queries
from pipeline.results.model import PredecessorReference
from pipeline.study_analysis import analyse_folder

logger = logging.getLogger(__name__)

DEMO_BUNDLE = Path(__file__).resolve().parent.parent / "deploy" / "models" / "demo"
"""Where the demo bundle lives in a checkout (used when no bundle is configured)."""
NO_BUNDLE_REASON = "no model bundle configured"

_bundles: dict[tuple[str, str, str], ModelBundle] = {}
_bundles_lock = threading.Lock()


DEMO_BUNDLE_ENV = "NEUROTRIAGE_DEMO_BUNDLE"
"""Environment variable overriding :data:`DEMO_BUNDLE`; empty: no demo fallback (tests)."""


def demo_bundle() -> Path | None:
    """The demo bundle when it exists (:data:`DEMO_BUNDLE`, or ``$NEUROTRIAGE_DEMO_BUNDLE``)."""
    value = os.environ.get(DEMO_BUNDLE_ENV)
    path = DEMO_BUNDLE if value is None else (Path(value) if value.strip() else None)
    return path if path is not None and (path / "manifest.json").is_file() else None


def bundle_path(settings: NodeSettings) -> Path | None:
    """The configured bundle, else the demo bundle if present, else None."""
    if settings.bundle is not None:
        return settings.bundle
    return demo_bundle()


def get_bundle(path: Path, device: str, operating_points: str = "") -> ModelBundle:
    """The bundle at ``path`` on ``device``, loaded once per process and kept warm.

    ``operating_points`` (the ``operating_points`` setting, e.g. ``"youden"`` or
    ``"youden,abnormal=sens90"``) overrides the points of the bundle's calls.

    Raises:
        BundleError: the bundle cannot be loaded, or the operating points name a
            finding it lacks.
    """
    key = (str(path.resolve()), device, operating_points)
    with _bundles_lock:
        bundle = _bundles.get(key)
        if bundle is None:
            bundle = load_bundle(path, device=device)
            if operating_points:
                try:
                    points = resolve_operating_points(
                        operating_points, bundle.manifest.queries.finding_ids
                    )
                except TrainingError as exc:
                    raise BundleError(f"operating_points {operating_points!r}: {exc}") from exc
                bundle.use_operating_points(points)
                logger.info("bundle %s: operating points set by the site: %s", path, points)
            warm_up(bundle)
            _bundles[key] = bundle
        return bundle


def warm_up(bundle: ModelBundle) -> None:
    """Run the preprocessing chain and one encoder once on a small phantom.

    The first call of MONAI's resampling in a process costs several seconds
    (imports, kernel set-up); paying it when the bundle is loaded keeps it out
    of the first study's latency.
    """
    import numpy as np

    from pipeline.preprocess import preprocess
    from pipeline.volume import Volume

    grid = np.mgrid[:24, :24, :24] - 11.5
    phantom = (np.sqrt((grid**2).sum(axis=0)) < 10).astype(np.float32) * 100.0
    volume = Volume(phantom, (8.0, 8.0, 8.0), (0.0, 0.0, 0.0), np.eye(3))
    tensor = torch.from_numpy(preprocess(volume, bundle.preprocess_spec))
    bundle.encode_image(bundle.sequences[0], tensor)


def preload(settings: NodeSettings) -> threading.Thread | None:
    """Start loading (and warming up) the bundle in the background, e.g. when a worker
    process starts, so the first study does not pay for it; a task that needs the
    bundle meanwhile waits for it (:func:`get_bundle`'s lock)."""
    path = bundle_path(settings)
    if path is None:
        return None

    def load() -> None:
        try:
            get_bundle(path, settings.device, settings.operating_points)
        except BundleError as exc:
            logger.error("bundle %s could not be preloaded: %s", path, exc)

    thread = threading.Thread(target=load, name="bundle-preload", daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=4)
def _sessions(database_url: str) -> sessionmaker[Session]:
    return session_factory(create_registry_engine(database_url))


def previous_sr_uid(settings: NodeSettings, study_uid: str, version: int) -> str | None:
    """SOP Instance UID of the latest SR recorded for an earlier version of the study."""
    with _sessions(settings.database_url)() as session:
        return session.scalars(
            select(AnalysisJob.sr_sop_instance_uid)
            .join(Study, Study.id == AnalysisJob.study_id)
            .where(Study.study_uid == study_uid)
            .where(AnalysisJob.version < version)
            .where(AnalysisJob.sr_sop_instance_uid.is_not(None))
            .order_by(AnalysisJob.version.desc())
            .limit(1)
        ).first()


def predecessor_of(
    settings: NodeSettings, study_uid: str, version: int
) -> PredecessorReference | None:
    """The earlier SR this version supersedes (None for a first analysis).

    The registry gives its SOP Instance UID; its file in the outbox gives the
    other UIDs. A missing file is logged and the new SR has no predecessor.
    """
    if version <= 1:
        return None
    sop_uid = previous_sr_uid(settings, study_uid, version)
    if sop_uid is None:
        return None
    for path in sorted((settings.outbox_dir / study_uid).glob(f"v*/SR_{sop_uid}.dcm")):
        return PredecessorReference.from_dataset(
            pydicom.dcmread(str(path), stop_before_pixels=True)
        )
    logger.warning(
        "study %s: previous SR %s is not in the outbox; version %d has no predecessor",
        study_uid,
        sop_uid,
        version,
    )
    return None


def user_queries(
    settings: NodeSettings, bundle: ModelBundle, study_uid: str
) -> dict[str, list[str]] | None:
    """The site's user queries (``settings.queries``), re-read when the file changes.

    A file that has become unreadable or invalid since the node started, and a
    query with the id of one of the bundle's findings, are logged and skipped:
    the study is still analysed with the model's own findings.
    """
    path = settings.queries
    if path is None:
        return None
    try:
        stamp = path.stat().st_mtime_ns
        cached = _QUERIES_CACHE.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, read_queries(path))
            _QUERIES_CACHE[path] = cached
    except (OSError, ConfigError) as exc:
        logger.error("study %s: user queries skipped: %s", study_uid, exc)
        return None
    queries = dict(cached[1])
    for fid in sorted(set(queries) & set(bundle.queries.findings)):
        logger.error(
            "study %s: user query %r skipped: %s is a finding of bundle %s",
            study_uid,
            fid,
            fid,
            bundle.name,
        )
        del queries[fid]
    return queries or None


_QUERIES_CACHE: dict[Path, tuple[int, dict[str, list[str]]]] = {}


def run_analysis(study_uid: str, version: int, settings: NodeSettings) -> Mapping[str, Any]:
    """Analyse version ``version`` of a received study (the :mod:`pipeline.tasks` hook)."""
    path = bundle_path(settings)
    if path is None:
        logger.warning("study %s: %s", study_uid, NO_BUNDLE_REASON)
        return {"not_analysed_reason": NO_BUNDLE_REASON}
    try:
        bundle = get_bundle(path, settings.device, settings.operating_points)
    except BundleError as exc:
        reason = f"model bundle {path} cannot be used: {exc}"
        logger.error("study %s: %s", study_uid, reason)
        return {"not_analysed_reason": reason[:1024]}
    folder = settings.storage_dir / study_uid
    if not folder.is_dir():
        return {"not_analysed_reason": f"study folder {folder} is missing from storage"}
    out_dir = settings.outbox_dir / study_uid / f"v{version}"
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a retried attempt starts clean: no duplicate objects
    predecessor = predecessor_of(settings, study_uid, version)
    extra = user_queries(settings, bundle, study_uid)
    try:
        analysis = analyse_folder(
            folder, bundle, out_dir, predecessor=predecessor, extra_queries=extra
        )
    except DicomNodeError as exc:
        logger.warning("study %s: not analysed: %s", study_uid, exc)
        return {
            "not_analysed_reason": str(exc)[:1024],
            "model_name": bundle.name,
            "model_version": bundle.version,
        }
    written = analysis.written
    outcome: dict[str, Any] = {
        "result": analysis.to_dict(),
        "outputs": [str(p) for p in written.files] if written else [],
        "model_name": bundle.name,
        "model_version": bundle.version,
        "stage_timings": {k: round(v, 4) for k, v in analysis.stage_timings.items()},
        "sr_sop_instance_uid": written.sr.sop_instance_uid if written else None,
    }
    if analysis.not_analysed_reason:
        outcome["not_analysed_reason"] = analysis.not_analysed_reason
    return outcome
