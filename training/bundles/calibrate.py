"""Choices made on the validation split: scoring/fusion and the operating points.

:func:`select_scoring` tries every combination of contrast (the normal references
only, or every finding of the bank, with a few temperatures), paraphrase
aggregation, normal-reference aggregation and sequence fusion
(:mod:`pipeline.model.scoring`) and keeps
the one with the highest mean AUC over the findings that have both classes in
validation (ties keep the earlier, simpler default);
:func:`select_finding_sequences` may then restrict a finding to the sequences
that show it. :func:`fit_calibration` maps each finding's scores to
probabilities (Platt scaling) and :func:`calibrate_thresholds`
then picks, per finding, the thresholds at sensitivity 0.90 and Youden's J.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from dicom_node.errors import TrainingError
from pipeline.model.operating_points import choose_thresholds
from pipeline.model.scoring import (
    AGGREGATIONS,
    Contrast,
    EmbeddedQueries,
    Fusion,
    ScoringSpec,
    score_logit,
    sequence_set_key,
)
from training.evaluation.metrics import auc_mann_whitney, bootstrap_auc_replicates
from training.evaluation.scoring import score_studies

logger = logging.getLogger(__name__)

ALL_CONTRAST_TEMPERATURES = (0.02, 0.05, 0.1)
"""Temperatures tried with ``contrast="all"`` (there T changes rankings, so it is chosen)."""


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.min(initial=1) == 0 and y.max(initial=0) == 1)


def labelled(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(finding id, labels, scores) of the findings with labels and both classes,
    studies without a score (NaN) dropped; a finding with one class is logged."""
    for fid, s in scores.items():
        y = labels.get(fid)
        if y is None:
            continue
        ok = ~np.isnan(s)
        if not _both_classes(y[ok]):
            logger.debug("finding %s: one class only in validation", fid)
            continue
        yield fid, y[ok], s[ok]


def mean_auc(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> float:
    """Mean AUC over findings with both classes (NaN scores dropped)."""
    aucs = [auc_mann_whitney(y, s) for _, y, s in labelled(scores, labels)]
    return float(np.mean(aucs)) if aucs else math.nan


ROBUST_FUSIONS: tuple[Fusion, ...] = ("mean_embedding", "mean_score")
"""Fusions tried by default. ``max_score`` lets the most extreme sequence decide, so
one sequence that does not transfer to a new site (its scores shifted there) moves
every study of that site; validation studies come from the training sites and
cannot show it. Measured on the demo (``docs/model.md``): validation preferred
``max_score`` by 0.013-0.026 mean AUC, and on the held-out site the triage AUC was
0.67-0.71 with it against 0.80 with ``mean_score``. Pass ``FUSIONS`` to try it anyway."""


def select_scoring(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    temperature: float = 0.05,
    fusions: Sequence[Fusion] = ROBUST_FUSIONS,
) -> tuple[ScoringSpec, list[dict[str, Any]]]:
    """The best :class:`ScoringSpec` on validation and the table of every candidate tried."""
    tried: list[dict[str, Any]] = []
    best: ScoringSpec | None = None
    best_auc = -math.inf
    grid: list[tuple[Contrast, float]] = [("normal", temperature)]
    grid += [("all", t) for t in ALL_CONTRAST_TEMPERATURES]
    for (contrast, t), fusion, pos, neg in itertools.product(
        grid, fusions, AGGREGATIONS, AGGREGATIONS
    ):
        spec = ScoringSpec(
            positive_aggregation=pos,
            normal_aggregation=neg,
            fusion=fusion,
            temperature=t,
            contrast=contrast,
        )
        auc = mean_auc(score_studies(embeddings, queries, spec), labels)
        tried.append(spec.model_dump() | {"mean_auc": auc})
        if not math.isnan(auc) and auc > best_auc + 1e-9:
            best, best_auc = spec, auc
    chosen = best or ScoringSpec(temperature=temperature)
    chosen = select_finding_contrasts(embeddings, labels, queries, chosen)
    logger.info("scoring chosen on validation: %s (mean AUC %.4f)", chosen, best_auc)
    return chosen, tried


def _finding_aucs(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> dict[str, float]:
    return {fid: auc_mann_whitney(y, s) for fid, y, s in labelled(scores, labels)}


def select_finding_contrasts(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
    min_gain: float = 0.01,
) -> ScoringSpec:
    """``spec`` with ``finding_contrast`` overrides where the other contrast is better.

    For each finding with both classes in validation, the AUC under the other
    contrast (same aggregations, fusion and temperature) replaces the global one
    when it is higher by at least ``min_gain`` (small validation sets are noisy).
    On generated reports the triage finding was best against every finding and
    most findings against the normal references only (``docs/model.md``).
    """
    other: Contrast = "all" if spec.contrast == "normal" else "normal"
    base = _finding_aucs(score_studies(embeddings, queries, spec), labels)
    alt_spec = spec.model_copy(update={"contrast": other, "finding_contrast": {}})
    alt = _finding_aucs(score_studies(embeddings, queries, alt_spec), labels)
    overrides = {
        fid: other for fid, auc in alt.items() if fid in base and auc >= base[fid] + min_gain
    }
    if not overrides:
        return spec
    logger.info("per-finding contrast overrides chosen on validation: %s", overrides)
    return spec.model_copy(update={"finding_contrast": overrides})


SequenceRule = Literal["gain", "one_se"]
SEQUENCE_RULES: tuple[SequenceRule, ...] = ("gain", "one_se")


def select_finding_sequences(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
    min_gain: float = 0.02,
    rule: SequenceRule = "gain",
    n_boot: int = 200,
    seed: int = 0,
) -> ScoringSpec:
    """``spec`` with ``finding_sequences`` where a subset of the sequences scores better.

    Every non-empty subset of the sequences is tried for every finding (fused by
    ``spec.fusion``, as at inference). A finding that one sequence shows (an acute
    infarct on DWI) no longer has its score diluted by the others.

    * ``rule="gain"``: a finding keeps the subset with the highest validation AUC
      when it beats all the sequences together by at least ``min_gain``. The
      margin is larger than for the contrast because more candidates are compared
      on the same few positives (the best of several noisy AUCs is biased upwards).
    * ``rule="one_se"`` (Breiman's one-standard-error rule): the smallest subset
      whose AUC is within one bootstrap standard error (``n_boot`` resamples of the
      validation studies) of the best subset's, the higher AUC among subsets of
      that size. Fewer sequences are preferred unless more are clearly better:
      each extra sequence brings its own site shift to a held-out site.
    """
    if rule not in SEQUENCE_RULES:
        raise TrainingError(f"sequence rule {rule!r} is not one of {SEQUENCE_RULES}")
    sequences = sorted({seq for e in embeddings for seq in e})
    base_scores = score_studies(embeddings, queries, spec)
    base = _finding_aucs(base_scores, labels)
    trials: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
    for size in range(1, len(sequences)):
        for subset in itertools.combinations(sequences, size):
            trial = spec.model_copy(
                update={"finding_sequences": {fid: list(subset) for fid in queries.findings}}
            )
            trials[subset] = score_studies(embeddings, queries, trial)
    trials[tuple(sequences)] = base_scores
    aucs = {subset: _finding_aucs(scores, labels) for subset, scores in trials.items()}
    best: dict[str, tuple[float, list[str]]] = {}
    for fid in base:
        if rule == "gain":  # subsets in order of size; the first of equal AUCs wins
            for subset, a in aucs.items():
                auc = a.get(fid, math.nan)
                better = auc >= base[fid] + min_gain and auc > best.get(fid, (-1.0,))[0]
                if len(subset) < len(sequences) and better:
                    best[fid] = (auc, list(subset))
            continue
        ranked = sorted(
            (a[fid], subset) for subset, a in aucs.items() if not math.isnan(a.get(fid, math.nan))
        )
        top_auc, top = ranked[-1]
        bar = top_auc - _bootstrap_se(labels[fid], trials[top][fid], n_boot, seed)
        eligible = [(len(sub), -auc, sub) for auc, sub in ranked if auc >= bar]
        _, neg_auc, chosen = min(eligible)
        if len(chosen) < len(sequences):
            best[fid] = (-neg_auc, list(chosen))
    if not best:
        return spec
    chosen_map = {fid: seqs for fid, (_, seqs) in sorted(best.items())}
    logger.info(
        "sequences per finding chosen on validation (%s): %s",
        rule,
        {
            fid: f"{'+'.join(seqs)} (AUC {base[fid]:.3f} -> {best[fid][0]:.3f})"
            for fid, seqs in chosen_map.items()
        },
    )
    return spec.model_copy(update={"finding_sequences": chosen_map})


def _bootstrap_se(labels: np.ndarray, scores: np.ndarray, n_boot: int, seed: int) -> float:
    """Standard error of the AUC over bootstrap resamples of the scored studies."""
    ok = ~np.isnan(scores)
    return float(np.std(bootstrap_auc_replicates(labels[ok], scores[ok], n_boot, seed)))


def select_heatmap_sequences(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
) -> dict[str, str]:
    """Finding id -> the sequence whose scores alone give the highest validation AUC.

    A finding is drawn where the model sees it: acute infarct on DWI, hydrocephalus
    on T2, rather than on whichever sequence happened to score a study highest.
    """
    sequences = sorted({seq for e in embeddings for seq in e})
    best: dict[str, tuple[float, str]] = {}
    for seq in sequences:
        members = [i for i, e in enumerate(embeddings) if seq in e]
        alone = [{seq: embeddings[i][seq]} for i in members]
        sub_labels = {fid: y[members] for fid, y in labels.items()}
        for fid, auc in _finding_aucs(score_studies(alone, queries, spec), sub_labels).items():
            if fid not in best or auc > best[fid][0]:
                best[fid] = (auc, seq)
    chosen = {fid: seq for fid, (_, seq) in sorted(best.items())}
    logger.info("heatmap sequence per finding chosen on validation: %s", chosen)
    return chosen


def parse_heatmap_sequences(text: str) -> dict[str, str]:
    """``"haemorrhage=FLAIR,tumour=T2"`` -> ``{"haemorrhage": "FLAIR", "tumour": "T2"}``.

    Raises:
        TrainingError: an item that is not ``FINDING=SEQUENCE``.
    """
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        finding, sep, sequence = (part.strip() for part in item.partition("="))
        if not sep or not finding or not sequence:
            raise TrainingError(
                f"heatmap sequence {item!r}: expected FINDING=SEQUENCE, e.g. haemorrhage=FLAIR"
            )
        out[finding] = sequence
    return out


def override_heatmap_sequences(
    chosen: Mapping[str, str],
    overrides: Mapping[str, str],
    findings: Sequence[str],
    sequences: Sequence[str],
) -> dict[str, str]:
    """``chosen`` (:func:`select_heatmap_sequences`) with some findings drawn elsewhere.

    Validation AUC says which sequence *ranks* a finding best, not which one shows
    *where* it is; an override records a choice made on localisation (e.g. the
    pointing game of ``bench/heatmaps.py``) or on radiological convention.

    Raises:
        TrainingError: an override names a finding not in the query bank or a
            sequence the bundle has no encoder for.
    """
    check_heatmap_overrides(overrides, findings, sequences)
    merged = {**chosen, **overrides}
    if overrides:
        logger.info("heatmap sequences set by hand: %s", dict(overrides))
    return merged


ALL_SEQUENCES = "all"
"""In ``--heatmap-sources``: every sequence the bundle has an encoder for."""


def parse_heatmap_sources(text: str) -> dict[str, list[str]]:
    """``"tumour=all,haemorrhage=DWI+FLAIR"`` -> ``{"tumour": ["all"], "haemorrhage": ["DWI",
    "FLAIR"]}`` (:func:`resolve_heatmap_sources` expands ``all`` and checks the names).

    Raises:
        TrainingError: an item that is not ``FINDING=SEQUENCE[+SEQUENCE...]`` or ``FINDING=all``.
    """
    out: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        finding, sep, joined = (part.strip() for part in item.partition("="))
        sequences = [seq.strip() for seq in joined.split("+") if seq.strip()]
        if not sep or not finding or not sequences:
            raise TrainingError(
                f"heatmap sources {item!r}: expected FINDING=SEQUENCE+SEQUENCE or FINDING=all, "
                "e.g. tumour=all"
            )
        out[finding] = sequences
    return out


def resolve_heatmap_sources(
    sources: Mapping[str, Sequence[str]], findings: Sequence[str], sequences: Sequence[str]
) -> dict[str, list[str]]:
    """``sources`` (:func:`parse_heatmap_sources`) with ``all`` expanded to ``sequences``.

    Raises:
        TrainingError: a finding not in the query bank, or a sequence without an encoder.
    """
    unknown = sorted(set(sources) - set(findings))
    if unknown:
        raise TrainingError(f"heatmap sources for unknown finding(s) {unknown}")
    resolved: dict[str, list[str]] = {}
    for finding, named in sorted(sources.items()):
        chosen = sorted(sequences) if ALL_SEQUENCES in named else sorted(set(named))
        missing = [seq for seq in chosen if seq not in sequences]
        if missing:
            raise TrainingError(
                f"heatmap sources of {finding!r}: {missing} have no encoder in this bundle "
                f"({sorted(sequences)})"
            )
        resolved[finding] = chosen
    return resolved


def check_heatmap_overrides(
    overrides: Mapping[str, str], findings: Sequence[str], sequences: Sequence[str]
) -> None:
    """Refuse overrides of unknown findings or onto sequences without an encoder
    (:class:`TrainingError`), before any calibration work is done."""
    unknown = sorted(set(overrides) - set(findings))
    if unknown:
        raise TrainingError(f"heatmap sequence for unknown finding(s) {unknown}")
    missing = sorted({seq for seq in overrides.values() if seq not in sequences})
    if missing:
        raise TrainingError(
            f"heatmap sequence(s) {missing} have no encoder in this bundle ({sorted(sequences)})"
        )


def spread_temperature(
    scores: Mapping[str, np.ndarray], temperature: float, floor: float = 1e-3
) -> float:
    """A temperature that spreads validation scores over (0, 1).

    Scores are ``sigmoid(d / T)``; the similarity differences ``d`` are recovered
    as ``T * logit(score)`` and the new temperature is their standard deviation
    (over every finding and study), so typical scores land around
    ``sigmoid(±1)`` ≈ 0.27-0.73 instead of crowding at 0.5. Rankings, AUCs and
    the calls at thresholds chosen afterwards are unchanged.
    """
    diffs = []
    for s in scores.values():
        ok = s[~np.isnan(s)].clip(1e-7, 1 - 1e-7)
        diffs.append(temperature * np.log(ok / (1 - ok)))
    if not diffs:
        return temperature
    spread = float(np.std(np.concatenate(diffs)))
    return max(spread, floor) if np.isfinite(spread) and spread > 0 else temperature


def fit_calibration(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> dict[str, tuple[float, float]]:
    """Finding id -> (slope, intercept) of a logistic fit of the labels on logit(score).

    Platt scaling on the validation split (maximum likelihood with Platt's
    smoothed targets, L-BFGS-B with the slope bounded positive so that the map
    cannot reverse a ranking). The scores of a similarity contrast at a low
    temperature crowd at 0 or 1 and say nothing a radiologist can read; the
    calibrated ones estimate how often the finding is present among validation
    studies scored alike. Findings with one class only,
    or whose scores do not rise with the labels, are left out (raw scores).
    """
    from scipy.optimize import minimize

    out: dict[str, tuple[float, float]] = {}
    for fid, y, s in labelled(scores, labels):
        x = score_logit(torch.from_numpy(np.asarray(s, dtype=np.float64))).numpy()
        # Platt's targets: (N+ + 1) / (N+ + 2) for positives, 1 / (N- + 2) for
        # negatives, so that perfectly separated validation scores (small sets,
        # easy findings) give a finite slope instead of a step from 0 to 1
        positives = float(y.sum())
        negatives = float(len(y) - positives)
        target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        centre, scale = float(x.mean()), float(x.std()) or 1.0
        z = (x - centre) / scale

        def loss(params: np.ndarray, z: np.ndarray = z, target: np.ndarray = target) -> float:
            logits = params[0] * z + params[1]
            return float(np.mean(np.logaddexp(0.0, logits) - target * logits))

        fit = minimize(
            loss, np.array([1.0, 0.0]), method="L-BFGS-B", bounds=[(1e-6, 50.0), (-50.0, 50.0)]
        )
        a, b = (float(v) for v in fit.x)
        if a <= 1e-5:
            logger.warning("finding %s: scores do not rise with the labels; not calibrated", fid)
            continue
        # back to the raw logit: a * (x - centre) / scale + b
        out[fid] = (a / scale, b - a * centre / scale)
    logger.info(
        "score calibration fitted on validation: %s",
        {k: tuple(round(v, 4) for v in p) for k, p in out.items()},
    )
    return out


def fit_set_calibration(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
    min_studies: int = 40,
    min_per_class: int = 5,
) -> dict[str, dict[str, tuple[float, float]]]:
    """Finding id -> {sequence set -> (slope, intercept)}: one Platt map per set of
    sequences a finding's exam score is fused from (``ScoringSpec.set_calibration``).

    Studies lack some sequences (post-contrast T1 only where contrast was given), and a
    score fused from {DWI, T2} is not distributed like one from {DWI, T1C, T2}: one map
    for both ranks every study of one set above the other's whatever they show. Each
    set with at least ``min_studies`` validation studies and ``min_per_class``
    positives and negatives gets its own map; the others keep the finding's
    ``calibration``. Findings scored from one set only get none.
    """
    raw_spec = spec.model_copy(update={"calibration": {}, "set_calibration": {}})
    scores = score_studies(embeddings, queries, raw_spec)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for fid in queries.findings:
        y = labels.get(fid)
        if y is None:
            continue
        keys = np.array(
            [sequence_set_key(raw_spec.sequences_for(fid, e)) if e else "" for e in embeddings]
        )
        distinct = sorted(set(keys.tolist()) - {""})
        if len(distinct) < 2:
            continue
        for key in distinct:
            members = keys == key
            positives = int(y[members].sum())
            negatives = int(members.sum()) - positives
            if members.sum() < min_studies or min(positives, negatives) < min_per_class:
                continue
            fitted = fit_calibration({fid: scores[fid][members]}, {fid: y[members]})
            if fid in fitted:
                out.setdefault(fid, {})[key] = fitted[fid]
    logger.info(
        "score calibration per sequence set fitted on validation: %s",
        {f: {k: tuple(round(v, 4) for v in p) for k, p in m.items()} for f, m in out.items()},
    )
    return out


def adopt_set_calibration(
    embeddings: Sequence[Mapping[str, Tensor]],
    labels: Mapping[str, np.ndarray],
    queries: EmbeddedQueries,
    spec: ScoringSpec,
) -> ScoringSpec:
    """``spec`` with :func:`fit_set_calibration`'s maps when they do not lower the
    validation mean AUC (the maps change how studies of different sequence sets rank
    against each other, so unlike one monotone map they can change AUCs)."""
    per_set = fit_set_calibration(embeddings, labels, queries, spec)
    if not per_set:
        return spec
    trial = spec.model_copy(update={"set_calibration": per_set})
    before = mean_auc(score_studies(embeddings, queries, spec), labels)
    after = mean_auc(score_studies(embeddings, queries, trial), labels)
    logger.info(
        "calibration per sequence set: validation mean AUC %.4f -> %.4f (%s)",
        before,
        after,
        "kept" if after >= before else "dropped",
    )
    return trial if after >= before else spec


def calibrate_thresholds(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """finding id -> {"sens90": t, "youden": t} for findings with both classes."""
    out: dict[str, dict[str, float]] = {}
    for fid, y, s in labelled(scores, labels):
        t = choose_thresholds(y, s)
        out[fid] = {"sens90": t.sens90, "youden": t.youden}
    for fid in sorted(set(scores) & set(labels) - set(out)):
        logger.warning("finding %s: one class only in validation, no threshold", fid)
    return out
