from __future__ import annotations

import pytest

from training.labels import NegExExtractor, agreement
from training.labels.protocol import LabelExtractor, TwoStepPromptExtractor

CASES = [
    ("No acute infarct or haemorrhage. Normal MRI brain.", set(), set()),
    (
        "Acute infarct in the left MCA territory with restricted diffusion. No haemorrhage.",
        {"acute_infarct"},
        set(),
    ),
    ("Chronic infarct in the right frontal lobe.", set(), set()),
    ("Possible small meningioma over the left convexity.", {"meningioma"}, {"meningioma"}),
    (
        "Haemorrhage is not seen. The ventricles are dilated, in keeping with hydrocephalus.",
        {"hydrocephalus"},
        set(),
    ),
    (
        "Periventricular white matter lesions in keeping with demyelination, but no mass.",
        {"demyelination"},
        set(),
    ),
    ("There is no hydrocephalus, however a left temporal glioma is present.", {"tumour"}, set()),
    (
        "Extra-axial dural-based mass, likely a meningioma. Mass effect on the frontal horn.",
        {"meningioma"},
        set(),
    ),
    ("Tumour has been excluded.", set(), set()),
]


@pytest.mark.parametrize(("text", "present", "uncertain"), CASES)
def test_negex_cases(text: str, present: set[str], uncertain: set[str]) -> None:
    result = NegExExtractor().extract(text)
    assert {f for f, v in result.labels.items() if v and f != "abnormal"} == present
    assert result.uncertain == uncertain
    assert result.labels["abnormal"] == int(bool(present))
    for finding in present:
        assert result.evidence[finding]


def test_hedged_as_negative_when_asked() -> None:
    result = NegExExtractor(uncertain_as=0).extract("Haemorrhage cannot be excluded.")
    assert result.labels["haemorrhage"] == 0 and result.uncertain == {"haemorrhage"}


def test_agreement_counts() -> None:
    truth = [{"x": 1}, {"x": 0}, {"x": 1}, {"x": 0}]
    found = [{"x": 1}, {"x": 1}, {"x": 0}, {"x": 0}]
    (row,) = agreement(found, truth, ["x"])
    assert (row.accuracy, row.sensitivity, row.specificity) == (0.5, 0.5, 0.5)
    assert row.kappa == pytest.approx(0.0)


class _ScriptedModel:
    """A deterministic stand-in for a local LLM: answers from keywords of the summary."""

    def generate(self, prompt: str) -> str:
        report = prompt.split("Report:\n", 1)[1]
        return "bleed present" if "haematoma" in report else "nothing relevant"

    def yes_no_logits(self, prompt: str) -> tuple[float, float]:
        return (2.0, -1.0) if "bleed present" in prompt else (-2.0, 1.0)


def test_two_step_prompt_extractor_follows_the_protocol() -> None:
    extractor = TwoStepPromptExtractor(
        _ScriptedModel(), {"haemorrhage": ("Haemorrhage", "blood outside the vessels")}
    )
    assert isinstance(extractor, LabelExtractor)
    yes = extractor.extract("Large right frontal haematoma.")
    no = extractor.extract("Normal brain.")
    assert yes.labels == {"haemorrhage": 1, "abnormal": 1}
    assert no.labels == {"haemorrhage": 0, "abnormal": 0}
    assert yes.probabilities["haemorrhage"] == pytest.approx(0.9526, abs=1e-3)


def test_agreement_with_the_synthetic_generator_truth() -> None:
    """The extractor reads the generator's reports (findings + impression) as the truth says."""
    np = pytest.importorskip("numpy")
    from training.synth.findings import FINDINGS
    from training.synth.reports import generate_report

    rng = np.random.default_rng(7)
    extractor = NegExExtractor()
    truths, found = [], []
    for _ in range(300):
        positives = set(rng.choice(FINDINGS, size=int(rng.integers(0, 3)), replace=False))
        report = generate_report({f: f in positives for f in FINDINGS}, rng)
        truth = {f: int(f in positives) for f in FINDINGS} | {"abnormal": int(bool(positives))}
        truths.append(truth)
        found.append(
            extractor.extract(f"{report.findings_section}\n{report.impression_section}").labels
        )
    rows = agreement(found, truths, [*FINDINGS, "abnormal"])
    for row in rows:
        assert row.accuracy >= 0.97, row
        assert row.kappa >= 0.9, row


def test_drop_negated_keeps_affirmed_and_neutral_sentences() -> None:
    text = (
        "Acute infarct in the left MCA territory. No hydrocephalus. "
        "The orbits are unremarkable. No intracranial haemorrhage or mass."
    )
    kept = NegExExtractor().drop_negated(text)
    assert kept == "Acute infarct in the left MCA territory. The orbits are unremarkable."
    assert NegExExtractor().drop_negated("No hydrocephalus.") == "normal study"
    assert NegExExtractor().drop_negated("No hydrocephalus.", fallback="") == ""


def test_affirmed_target_section_drops_negated_sentences() -> None:
    from training.data.cache import CachedStudy
    from training.image.train import section_text

    study = CachedStudy(
        key="1.2.3",
        split="train",
        findings="No hydrocephalus. Enhancing extra-axial lesion, likely a meningioma.",
        impression="Meningioma.",
        sequences={},
    )
    text = section_text(study, "affirmed")
    assert "hydrocephalus" not in text and "meningioma" in text
    assert section_text(study, "report").count("hydrocephalus") == 1
