"""One study folder -> scores, calls, triage, heatmaps -> the DICOM results (SR + captures).

The stages (each timed, seconds, in :attr:`StudyAnalysis.stage_timings`):

``load``
    series selection (:func:`pipeline.series.select_series`) and decoding of the
    chosen series of each sequence the bundle has an encoder for (the same
    per-sequence volumes as training: :mod:`pipeline.model.inputs`);
``preprocess``
    the bundle's :class:`~pipeline.preprocess.PreprocessSpec`, keeping each
    output grid's geometry for the heatmaps;
``encode``
    one embedding per sequence (each sequence has its own encoder, so a study
    is one forward pass per sequence);
``score``
    zero-shot scores, present/absent calls at the stored operating points, the
    triage call (:meth:`pipeline.model.ModelBundle.score`);
``heatmaps``
    saliency maps (gradient x input, :mod:`pipeline.heatmaps`) for each finding
    called present and for the triage result, on the sequence the bundle chose for
    that finding on validation (else the one that scored it highest), mapped back
    onto that series' original slices;
``write``
    the TID 1500 SR and the secondary-capture series (:mod:`pipeline.results.writer`).

A sequence the study lacks or that cannot be decoded is skipped with its reason;
the SR lists the sequences used. With none usable the result is a
:class:`~pipeline.results.model.NotAnalysedResult` whose SR carries the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import torch
from pydicom.dataset import Dataset

from dicom_node.errors import DicomNodeError, ResultsError
from pipeline.heatmaps import (
    HEATMAP_METHODS,
    display_slices,
    head_region,
    mean_map,
    onto_grid,
    peak_world,
    saliency_maps,
    to_sitk,
)
from pipeline.model import ModelBundle, StudyScores
from pipeline.model.inputs import sequence_volume
from pipeline.model.queries import TRIAGE_FINDING
from pipeline.preprocess import preprocess_with_affine
from pipeline.results.heatmap_geometry import resample_to_slices, sort_slices
from pipeline.results.model import (
    AnalysisResult,
    FindingResult,
    ModelIdentity,
    NotAnalysedResult,
    PredecessorReference,
    SeriesReference,
    StudyIdentity,
    TriageResult,
)
from pipeline.results.writer import TRIAGE_HEATMAP, HeatmapInput, WrittenResults, write_results
from pipeline.series import SelectedSeries, StudySelection, select_series

logger = logging.getLogger(__name__)

STAGES = ("load", "preprocess", "encode", "score", "heatmaps", "write")
MANUFACTURER = "NeuroTriage Node open-source project"
NO_USABLE_SEQUENCE = "no usable sequence"
#: Display-name prefix of a user query's finding in the SR (scored, not called).
USER_QUERY_LABEL = "User query"


class StageTimer:
    """Wall-clock seconds per named stage (accumulated over repeated entries)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


@dataclass
class PreparedSequence:
    """One sequence's model input and where it came from."""

    sequence: str
    selected: SelectedSeries
    tensor: npt.NDArray[np.float32]
    affine_lps: npt.NDArray[np.float64]


@dataclass
class HeatmapSummary:
    """Where a written heatmap series is and what it shows."""

    finding_id: str
    sequence: str
    series_instance_uid: str
    instances: int
    peak_lps: tuple[float, float, float] | None
    """None: the map is empty (no positive evidence)."""


@dataclass
class StudyAnalysis:
    """Everything one analysis produced (also the JSON stored in the registry)."""

    study_uid: str
    result: AnalysisResult | NotAnalysedResult
    scores: StudyScores | None
    written: WrittenResults | None
    skipped: dict[str, str] = field(default_factory=dict)
    heatmaps: list[HeatmapSummary] = field(default_factory=list)
    stage_timings: dict[str, float] = field(default_factory=dict)

    @property
    def not_analysed_reason(self) -> str | None:
        """The reason when the study could not be analysed, else None."""
        return self.result.reason if isinstance(self.result, NotAnalysedResult) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: scores, calls, triage, sequences, maps, timings."""
        findings: dict[str, Any] = {}
        triage: dict[str, Any] | None = None
        if self.scores is not None:
            for fid, r in self.scores.findings.items():
                item = {
                    "display_name": r.display_name,
                    "score": r.score,
                    "threshold": r.threshold,
                    "operating_point": r.operating_point,
                    "present": r.present,
                    "per_sequence": dict(r.per_sequence),
                    "user_defined": r.user_defined,
                }
                if fid == TRIAGE_FINDING:
                    triage = {"score": r.score, "threshold": r.threshold, "abnormal": r.present}
                else:
                    findings[fid] = item
        doc: dict[str, Any] = {
            "study_uid": self.study_uid,
            "status": self.result.status,
            "reason": self.not_analysed_reason,
            "model": {
                "name": self.result.model.name,
                "version": self.result.model.version,
                "device_uid": self.result.model.device_uid,
            },
            "sequences_used": list(self.result.sequences_used),
            "series": {s.sequence: s.series_instance_uid for s in self.result.series},
            "skipped": dict(self.skipped),
            "triage": triage,
            "findings": findings,
            "heatmaps": [
                h.__dict__ | {"peak_lps": None if h.peak_lps is None else list(h.peak_lps)}
                for h in self.heatmaps
            ],
            "stage_timings": {k: round(v, 4) for k, v in self.stage_timings.items()},
        }
        if self.written is not None:
            doc["sr"] = {
                "sop_instance_uid": self.written.sr.sop_instance_uid,
                "series_instance_uid": self.written.sr.series_instance_uid,
                "path": str(self.written.sr.path),
            }
            doc["files"] = [str(p) for p in self.written.files]
        return doc


def model_identity(bundle: ModelBundle) -> ModelIdentity:
    """The bundle as the SR's algorithm / device (TID 4019, Contributing Equipment)."""
    return ModelIdentity(
        name=bundle.name[:64],
        version=bundle.version,
        device_uid=bundle.device_uid,
        manufacturer=MANUFACTURER,
    )


def _header(source: Path | Dataset) -> Dataset:
    if isinstance(source, Dataset):
        return source
    return pydicom.dcmread(str(source), stop_before_pixels=True)


def _full(source: Path | Dataset) -> Dataset:
    if isinstance(source, Dataset):
        return source
    return pydicom.dcmread(str(source))


def study_identity(selection: StudySelection) -> StudyIdentity:
    """Patient and study attributes of the analysed study (from its first series)."""
    for entry in selection.series:
        for source in entry.sources:
            return StudyIdentity.from_dataset(_header(source))
    raise ResultsError(f"study {selection.study_uid or '?'}: no instance to identify it")


def series_reference(sequence: str, selected: SelectedSeries) -> SeriesReference:
    """The SR's reference to the series a sequence was read from (all its instances)."""
    headers = [_header(s) for s in selected.files]
    return SeriesReference(
        sequence=sequence,
        series_instance_uid=selected.series_uid,
        sop_class_uid=str(headers[0].SOPClassUID),
        sop_instance_uids=tuple(dict.fromkeys(str(h.SOPInstanceUID) for h in headers)),
    )


def prepare_sequences(
    selection: StudySelection, bundle: ModelBundle, timer: StageTimer
) -> tuple[dict[str, PreparedSequence], dict[str, str]]:
    """Load and preprocess each of the bundle's sequences; (prepared, skipped with reasons)."""
    from pipeline.series import SequenceClass

    prepared: dict[str, PreparedSequence] = {}
    skipped: dict[str, str] = {}
    spec = bundle.preprocess_spec
    for sequence in bundle.sequences:
        try:
            with timer.stage("load"):
                volume, _series_uid, _why = sequence_volume(selection, sequence)
            selected = selection.get(SequenceClass(sequence))
            if selected is None and sequence == "ADC":
                selected = selection.get(SequenceClass.DWI)
            if selected is None:
                raise LookupError(f"no {sequence} series in the study")
            with timer.stage("preprocess"):
                tensor, affine = preprocess_with_affine(volume, spec)
        except (LookupError, ValueError, DicomNodeError) as exc:
            skipped[sequence] = str(exc)
        except Exception as exc:  # noqa: BLE001 - pixel decoders raise anything: skip, say why
            skipped[sequence] = f"cannot be decoded: {type(exc).__name__}: {exc}"
        else:
            prepared[sequence] = PreparedSequence(sequence, selected, tensor, affine)
            continue
        logger.info("study %s: %s skipped: %s", selection.study_uid, sequence, skipped[sequence])
    return prepared, skipped


def _references(prepared: Mapping[str, PreparedSequence]) -> tuple[SeriesReference, ...]:
    refs: list[SeriesReference] = []
    seen: set[str] = set()
    for sequence, item in prepared.items():
        if item.selected.series_uid in seen:
            continue  # e.g. an ADC computed from the DWI series: that series is cited once
        seen.add(item.selected.series_uid)
        refs.append(series_reference(sequence, item.selected))
    return tuple(refs)


def build_result(
    identity: StudyIdentity,
    model: ModelIdentity,
    scores: StudyScores,
    series: tuple[SeriesReference, ...],
    predecessor: PredecessorReference | None,
) -> AnalysisResult:
    """The typed result the SR is written from (calibrated findings; triage separately)."""
    cited = {s.sequence for s in series}
    used = tuple(s for s in scores.sequences_used if s in cited) or (series[0].sequence,)
    calibrated = [
        FindingResult(
            finding_id=r.finding_id,
            display_name=r.display_name[:64],
            score=r.score,
            threshold=r.threshold,
            present=bool(r.present),
            sequences=used,
        )
        for fid, r in scores.findings.items()
        if fid != TRIAGE_FINDING and r.threshold is not None and not r.user_defined
    ]
    # User queries: scored, not called; after the model's findings.
    user_queries = [
        FindingResult(
            finding_id=r.finding_id,
            display_name=f"{USER_QUERY_LABEL}: {r.finding_id}"[:64],
            score=r.score,
            threshold=None,
            present=None,
            sequences=used,
        )
        for r in scores.findings.values()
        if r.user_defined
    ]
    findings = tuple(calibrated + user_queries)
    triage = scores.triage
    if triage is None or triage.threshold is None:
        raise ResultsError(f"bundle has no calibrated {TRIAGE_FINDING!r} finding for the triage")
    return AnalysisResult(
        study=identity,
        model=model,
        series=series,
        findings=findings,
        triage=TriageResult(
            abnormal=bool(triage.present), score=triage.score, threshold=triage.threshold
        ),
        predecessor=predecessor,
    )


def heatmap_targets(scores: StudyScores) -> list[str]:
    """Finding ids to explain: the triage finding, then each finding called present."""
    targets = [TRIAGE_FINDING] if scores.triage is not None else []
    targets += [
        fid
        for fid, r in scores.findings.items()
        if fid != TRIAGE_FINDING and r.present and not r.user_defined
    ]
    return targets


def _best_sequence(
    scores: StudyScores, fid: str, drawable: Sequence[str], preferred: str | None = None
) -> str | None:
    """Where to draw ``fid``: the bundle's ``preferred`` sequence for it (chosen on
    validation) when drawable, else the drawable sequence that scored it highest."""
    if preferred is not None and preferred in drawable:
        return preferred
    per = scores.findings[fid].per_sequence
    ranked = sorted((s for s in drawable if s in per), key=lambda s: -per[s])
    return ranked[0] if ranked else None


def make_heatmaps(
    bundle: ModelBundle,
    scores: StudyScores,
    prepared: Mapping[str, PreparedSequence],
    *,
    targets: Sequence[str] | None = None,
    study_uid: str = "",
    method: str = HEATMAP_METHODS[0],
) -> tuple[list[HeatmapInput], list[tuple[str, str, tuple[float, float, float] | None]]]:
    """Saliency maps (``method``, :mod:`pipeline.heatmaps`) of the targets on their best
    sequence, on the original slices. A finding with ``heatmap_sources`` in the
    bundle's scoring spec is drawn from the mean of those sequences' maps
    (:func:`~pipeline.heatmaps.mean_map`), each moved onto the drawn sequence's grid.

    Returns:
        The writer's inputs, and (finding id, sequence, peak LPS) of each map.
    """
    targets = heatmap_targets(scores) if targets is None else list(targets)
    slices: dict[str, list[Dataset]] = {}
    for sequence, item in prepared.items():
        try:
            datasets = [_full(s) for s in item.selected.files]
            slices[sequence] = sort_slices(display_slices(datasets))
        except (DicomNodeError, OSError, ValueError) as exc:
            logger.info("study %s: no heatmap on %s: %s", study_uid, sequence, exc)
    scoring = bundle.manifest.scoring
    drawn: dict[str, list[str]] = {}  # sequence drawn on -> its findings
    sources: dict[str, list[str]] = {}  # finding -> sequences its map averages
    for fid in targets:
        best = _best_sequence(scores, fid, list(slices), scoring.heatmap_sequence.get(fid))
        if best is None:
            continue
        drawn.setdefault(best, []).append(fid)
        wanted = scoring.heatmap_sources.get(fid, [])
        sources[fid] = [best] + [s for s in wanted if s != best and s in prepared]
    needed: dict[str, list[str]] = {}
    for fid, seqs in sources.items():
        for sequence in seqs:
            needed.setdefault(sequence, []).append(fid)
    maps: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
    for sequence, fids in needed.items():
        item = prepared[sequence]
        for fid, heat in saliency_maps(
            method,
            bundle.image_encoders[sequence],
            torch.from_numpy(item.tensor),
            bundle.queries,
            fids,
            scoring,
            bundle.device,
            within=head_region(item.tensor, bundle.preprocess_spec.clamp[0]),
        ).items():
            maps[(sequence, fid)] = heat
    inputs: list[HeatmapInput] = []
    peaks: list[tuple[str, str, tuple[float, float, float] | None]] = []
    for sequence, fids in drawn.items():
        item = prepared[sequence]
        for fid in fids:
            heat = maps[(sequence, fid)]
            if len(sources[fid]) > 1:
                heat = mean_map(
                    [heat]
                    + [
                        onto_grid(
                            maps[(s, fid)], prepared[s].affine_lps, heat.shape, item.affine_lps
                        )
                        for s in sources[fid][1:]
                    ],
                    within=head_region(item.tensor, bundle.preprocess_spec.clamp[0]),
                )
            on_slices = resample_to_slices(to_sitk(heat, item.affine_lps), slices[sequence])
            key = TRIAGE_HEATMAP if fid == TRIAGE_FINDING else fid
            map_from = tuple(sorted(sources[fid])) if len(sources[fid]) > 1 else ()
            inputs.append(HeatmapInput(key, sequence, slices[sequence], on_slices, map_from))
            peaks.append((key, sequence, peak_world(heat, item.affine_lps)))
    return inputs, peaks


def analyse_selection(
    selection: StudySelection,
    bundle: ModelBundle,
    out_dir: Path | None,
    *,
    predecessor: PredecessorReference | None = None,
    extra_queries: Mapping[str, Sequence[str]] | None = None,
    heatmaps: bool = True,
    slices_per_heatmap: int = 5,
    timer: StageTimer | None = None,
) -> StudyAnalysis:
    """Analyse a selected study; write its results under ``out_dir`` (None: write nothing)."""
    timer = timer or StageTimer()
    study_uid = selection.study_uid
    identity = study_identity(selection)
    model = model_identity(bundle)
    prepared, skipped = prepare_sequences(selection, bundle, timer)
    scores: StudyScores | None = None
    result: AnalysisResult | NotAnalysedResult
    heat_inputs: list[HeatmapInput] = []
    peaks: list[tuple[str, str, tuple[float, float, float] | None]] = []
    if not prepared:
        detail = "; ".join(f"{seq}: {why}" for seq, why in skipped.items())
        reason = f"{NO_USABLE_SEQUENCE} for model {bundle.name} {bundle.version} ({detail})"
        result = NotAnalysedResult(
            study=identity, model=model, reason=reason[:1024], predecessor=predecessor
        )
    else:
        with timer.stage("encode"), torch.inference_mode():
            embeddings = {
                seq: bundle.encode_image(seq, torch.from_numpy(item.tensor))
                for seq, item in prepared.items()
            }
        with timer.stage("score"):
            scores = bundle.score(embeddings, extra_queries=extra_queries)
            result = build_result(identity, model, scores, _references(prepared), predecessor)
        if heatmaps:
            with timer.stage("heatmaps"):
                heat_inputs, peaks = make_heatmaps(bundle, scores, prepared, study_uid=study_uid)
    written = None
    if out_dir is not None:
        with timer.stage("write"):
            written = write_results(
                result, out_dir, heat_inputs, slices_per_heatmap=slices_per_heatmap
            )
    summaries = []
    for key, sequence, peak in peaks:
        series = [h for h in (written.heatmaps if written else []) if h.label == key]
        summaries.append(
            HeatmapSummary(
                finding_id=key,
                sequence=sequence,
                series_instance_uid=series[0].series_instance_uid if series else "",
                instances=len(series),
                peak_lps=peak,
            )
        )
    logger.info(
        "study %s: %s (%s), stages %s",
        study_uid,
        result.status,
        ",".join(result.sequences_used) or "no sequence",
        {k: round(v, 2) for k, v in timer.timings.items()},
    )
    return StudyAnalysis(
        study_uid=study_uid,
        result=result,
        scores=scores,
        written=written,
        skipped=skipped,
        heatmaps=summaries,
        stage_timings=dict(timer.timings),
    )


def analyse_folder(
    folder: Path,
    bundle: ModelBundle,
    out_dir: Path | None,
    **options: Any,
) -> StudyAnalysis:
    """Select the series of a study folder and analyse it (see :func:`analyse_selection`).

    Raises:
        DicomNodeError: the folder holds no DICOM study.
    """
    timer = options.pop("timer", None) or StageTimer()
    with timer.stage("load"):
        selection = select_series(folder)
    if not selection.series:
        raise ResultsError(f"folder {folder} holds no DICOM series")
    return analyse_selection(selection, bundle, out_dir, timer=timer, **options)
