"""Scores mapped to probabilities on validation (Platt scaling), rankings kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.model.scoring import EmbeddedQueries, ScoringSpec, calibrate, fused_scores
from training.bundles.calibrate import fit_calibration
from training.evaluation.metrics import auc_mann_whitney


def test_saturated_scores_become_calibrated_probabilities_with_the_same_ranking() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    labels = (rng.random(n) < 0.2).astype(int)
    # a contrast at a low temperature: raw scores crowd at 0 and 1
    logit = 25.0 * (labels * 1.0 + rng.normal(0, 0.8, n) - 0.5)
    raw = 1 / (1 + np.exp(-logit))
    assert np.mean((raw < 1e-3) | (raw > 1 - 1e-3)) > 0.5
    params = fit_calibration({"bleed": raw}, {"bleed": labels})
    assert params["bleed"][0] > 0
    calibrated = calibrate(torch.from_numpy(raw), params["bleed"]).numpy()
    assert auc_mann_whitney(labels, calibrated) == pytest.approx(auc_mann_whitney(labels, raw))
    # calibrated: the mean probability matches the prevalence, overall and by decile
    assert calibrated.mean() == pytest.approx(labels.mean(), abs=0.01)
    order = np.argsort(calibrated)
    for chunk in np.array_split(order, 5):
        assert calibrated[chunk].mean() == pytest.approx(labels[chunk].mean(), abs=0.07)
    assert np.median(calibrated[labels == 1]) > 0.05
    assert np.median(calibrated[labels == 0]) < 0.5


def test_no_calibration_without_both_classes_or_without_a_rising_relation() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(100)
    labels = (scores < 0.3).astype(int)  # higher score, fewer positives
    assert fit_calibration({"x": scores}, {"x": labels}) == {}
    assert fit_calibration({"x": scores}, {"x": np.zeros(100, dtype=int)}) == {}


def test_fused_scores_apply_the_map_to_listed_findings_only() -> None:
    queries = EmbeddedQueries(
        normal=torch.eye(4)[:1], findings={"bleed": torch.eye(4)[1:2], "mass": torch.eye(4)[2:3]}
    )
    images = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.3, 0.1, 0], [1, 0, 0.4, 0]]), dim=-1
    )
    plain = fused_scores({"T2": images}, queries, ScoringSpec())
    mapped = fused_scores({"T2": images}, queries, ScoringSpec(calibration={"bleed": (0.5, -1.0)}))
    expected = torch.sigmoid(0.5 * torch.logit(plain.exam["bleed"].double()) - 1.0)
    assert torch.allclose(mapped.exam["bleed"], expected)
    assert torch.allclose(mapped.per_sequence["T2"]["bleed"], expected)
    assert torch.equal(mapped.exam["mass"], plain.exam["mass"])
    with pytest.raises(ValueError, match="positive slope"):
        ScoringSpec(calibration={"bleed": (-1.0, 0.0)})
    spec = ScoringSpec(calibration={"bleed": (0.5, -1.0)})
    assert ScoringSpec.model_validate_json(spec.model_dump_json()) == spec


def test_perfectly_separated_validation_gives_a_finite_map() -> None:
    labels = np.array([0] * 8 + [1] * 4)
    raw = np.linspace(0.01, 0.99, 12)  # every positive above every negative
    params = fit_calibration({"hydro": raw}, {"hydro": labels})["hydro"]
    calibrated = calibrate(torch.from_numpy(raw), params).numpy()
    # Platt's targets keep the slope finite: no step from exactly 0 to exactly 1
    assert calibrated.min() > 1e-3 and calibrated.max() < 0.999
    assert params[0] < 20.0
    assert np.all(np.diff(calibrated) > 0)
