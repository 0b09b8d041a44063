from __future__ import annotations

import numpy as np
import pytest

from dicom_node.errors import TrainingError
from pipeline.model.operating_points import (
    choose_thresholds,
    parse_operating_points,
    resolve_operating_points,
    sensitivity_specificity,
    threshold_at_sensitivity,
    youden_threshold,
)
from pipeline.model.queries import default_query_bank


def test_sens90_threshold_is_the_highest_reaching_the_sensitivity() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)
    s = np.r_[rng.normal(1, 1, 50), rng.normal(0, 1, 50)]
    t = threshold_at_sensitivity(y, s, 0.90)
    sens, _ = sensitivity_specificity(y, s, t)
    assert sens >= 0.90
    # any higher positive score as threshold drops below 0.90
    higher = np.sort(s[y == 1])
    higher = higher[higher > t]
    assert sensitivity_specificity(y, s, float(higher.min()))[0] < 0.90


def test_youden_separates_separable_scores() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    t = youden_threshold(y, s)
    assert 0.3 < t <= 0.7
    assert sensitivity_specificity(y, s, t) == (1.0, 1.0)
    both = choose_thresholds(y, s)
    assert both.get("youden") == t
    assert both.sens90 == pytest.approx(0.7)


def test_one_class_is_refused_with_a_clear_message() -> None:
    with pytest.raises(TrainingError, match="both classes"):
        youden_threshold([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(TrainingError, match="sensitivity"):
        threshold_at_sensitivity([0, 1], [0.1, 0.2], 1.5)
    with pytest.raises(TrainingError, match="operating point"):
        choose_thresholds([0, 1], [0.1, 0.2]).get("f1")


def test_spread_temperature_keeps_ranking_and_spreads_scores() -> None:
    from training.bundles.calibrate import spread_temperature

    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.01, 200)  # small similarity differences, as real encoders give
    t = 0.05
    scores = {"x": 1 / (1 + np.exp(-d / t))}
    new_t = spread_temperature(scores, t)
    assert new_t == pytest.approx(np.std(d), rel=1e-3)
    spread = 1 / (1 + np.exp(-d / new_t))
    assert np.array_equal(np.argsort(spread), np.argsort(scores["x"]))
    assert np.std(spread) > 3 * np.std(scores["x"])


def test_operating_points_parse_a_default_and_overrides() -> None:
    assert parse_operating_points("youden, abnormal=sens90") == ("youden", {"abnormal": "sens90"})
    assert parse_operating_points("sens90") == ("sens90", {})
    assert parse_operating_points("") == (None, {})
    ids = default_query_bank().finding_ids
    points = resolve_operating_points("youden,abnormal=sens90", ids)
    assert points["abnormal"] == "sens90"
    assert {points[f] for f in ids if f != "abnormal"} == {"youden"}
    assert set(resolve_operating_points("tumour=youden", ids).values()) == {"sens90", "youden"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sens95", "not one of"),
        ("youden,sens90", "two defaults"),
        ("tumour=youden,tumour=sens90", "once each"),
        ("=youden", "FINDING=POINT"),
        ("tumour=best", "not one of"),
    ],
)
def test_malformed_operating_points_are_refused(text: str, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        parse_operating_points(text)


def test_operating_points_for_a_finding_the_bank_lacks_are_refused() -> None:
    with pytest.raises(TrainingError, match=r"\['cyst'\] not in the bank"):
        resolve_operating_points("cyst=youden", default_query_bank().finding_ids)


def test_thresholds_carry_each_findings_operating_point() -> None:
    bank = default_query_bank()
    thresholds = {f: {"sens90": 0.2, "youden": 0.6} for f in bank.finding_ids}
    points = resolve_operating_points("youden,abnormal=sens90", bank.finding_ids)
    calibrated = {f.id: f for f in bank.with_thresholds(thresholds, points).findings}
    assert calibrated["abnormal"].threshold == 0.2
    assert calibrated["tumour"].threshold == 0.6
    assert calibrated["tumour"].operating_point == "youden"
    one = {f.id: f for f in bank.with_thresholds(thresholds, "youden").findings}
    assert {f.threshold for f in one.values()} == {0.6}
