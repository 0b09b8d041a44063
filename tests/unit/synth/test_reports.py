"""Reports: what they assert agrees with the generator's truth, sentence by sentence."""

from __future__ import annotations

import numpy as np
import pytest

from training.synth import FINDINGS, Report, generate_report
from training.synth.study import draw_findings


def _reports(n: int, seed: int = 7) -> list[tuple[dict[str, bool], Report]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        truth = draw_findings(rng)
        out.append((truth, generate_report(truth, rng)))
    return out


def test_positive_mentions_are_exactly_the_true_findings() -> None:
    for truth, report in _reports(400):
        present = {f for f, v in truth.items() if v}
        assert report.positive_findings() == present, report.text


def test_negated_mentions_are_only_of_absent_findings() -> None:
    seen_negations = 0
    for truth, report in _reports(400):
        negated = report.negated_findings()
        seen_negations += len(negated)
        assert not any(truth[f] for f in negated), report.text
    assert seen_negations > 400  # negations are common, not an accident


def test_every_present_finding_is_in_the_impression() -> None:
    for truth, report in _reports(200, seed=3):
        impression = {
            s.finding
            for s in report.sentences
            if s.section == "impression" and s.assertion == "present"
        }
        assert impression == {f for f, v in truth.items() if v}


def test_sections_are_the_texts_of_their_sentences() -> None:
    for _, report in _reports(50, seed=11):
        r = report
        findings_text = " ".join(s.text for s in r.sentences if s.section == "findings")
        assert r.findings_section == findings_text
        assert r.findings_section in r.text
        for s in r.sentences:
            if s.section == "impression":
                assert s.text in r.impression_section


def test_normal_reports_say_normal_and_abnormal_ones_do_not() -> None:
    for truth, report in _reports(200, seed=5):
        impression_normal = any(
            s.section == "impression" and s.assertion == "normal" and s.finding is None
            for s in report.sentences
        )
        assert impression_normal == (not any(truth.values()))


def test_variety_spelling_synonyms_hedging() -> None:
    reports = [r for _, r in _reports(400, seed=9)]
    texts = " ".join(r.text for r in reports)
    assert {r.spelling for r in reports} == {"british", "american"}
    for word in ("haemorrhage", "hemorrhage", "oedema", "edema", "infarct", "stroke"):
        assert word in texts, word
    assert any(s.hedged for r in reports for s in r.sentences)
    # many distinct sentences per finding
    for finding in FINDINGS:
        variants = {
            s.text
            for r in reports
            for s in r.sentences
            if s.finding == finding and s.assertion == "present"
        }
        assert len(variants) >= 5, finding


@pytest.mark.parametrize("seed", [0, 1])
def test_report_is_deterministic(seed: int) -> None:
    truth = {"tumour": True}
    a = generate_report(truth, np.random.default_rng(seed))
    b = generate_report(truth, np.random.default_rng(seed))
    assert a.text == b.text
