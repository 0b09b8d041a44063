# ruff: noqa: E501  (phrase banks: one sentence per line reads better than split strings)
"""Free-text neuroradiology reports with the truth of every sentence kept alongside.

A report has an indication, a technique line, a *Findings* and an *Impression*
section. Each sentence is generated from a :class:`Sentence` record that says
which finding it is about and whether it asserts it ("present"), denies it
("absent"), only raises it as a clinical question ("query") or is a general
statement ("normal"). Tests check the text against these records; labels for
training come from the generator's truth, never from the text.

Variety: several phrasings and synonyms per finding, explicit negations,
hedging ("likely", "cannot be excluded" for present but subtle findings),
measurements in mm or cm, British or American spelling per report, and
occasional typos (never in negation words).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from training.synth.findings import FINDINGS, FindingDescriptor

Assertion = Literal["present", "absent", "query", "normal"]


@dataclass(frozen=True)
class Sentence:
    """One sentence of a report and its truth.

    Attributes:
        text: the sentence as written (after spelling variant and typos).
        section: "indication", "technique", "findings" or "impression".
        finding: the finding id it is about, or None for general statements.
        assertion: "present", "absent", "query" (clinical question) or "normal".
        hedged: the statement is uncertain ("likely", "cannot be excluded").
    """

    text: str
    section: str
    finding: str | None
    assertion: Assertion
    hedged: bool = False


@dataclass(frozen=True)
class Report:
    """A generated report.

    Attributes:
        text: the full report (indication, technique, findings, impression).
        findings_section: text of the Findings section (without its heading).
        impression_section: text of the Impression section (without its heading).
        sentences: every sentence with its truth.
        spelling: "british" or "american".
    """

    text: str
    findings_section: str
    impression_section: str
    sentences: tuple[Sentence, ...] = field(default_factory=tuple)
    spelling: str = "british"

    def positive_findings(self) -> set[str]:
        """Finding ids asserted present by some sentence of Findings or Impression."""
        return {
            s.finding
            for s in self.sentences
            if s.finding and s.assertion == "present" and s.section in {"findings", "impression"}
        }

    def negated_findings(self) -> set[str]:
        """Finding ids explicitly denied by some sentence."""
        return {s.finding for s in self.sentences if s.finding and s.assertion == "absent"}


_AMERICAN = {
    "haemorrhage": "hemorrhage",
    "Haemorrhage": "Hemorrhage",
    "haemorrhagic": "hemorrhagic",
    "haematoma": "hematoma",
    "Haematoma": "Hematoma",
    "haemosiderin": "hemosiderin",
    "oedema": "edema",
    "Oedema": "Edema",
    "ischaemia": "ischemia",
    "ischaemic": "ischemic",
    "Ischaemic": "Ischemic",
    "tumour": "tumor",
    "Tumour": "Tumor",
    "grey": "gray",
    "centimetre": "centimeter",
    "hyperintense": "hyperintense",
}

# ---------------------------------------------------------------------------- phrase banks

_SIDE_WORD = {"left": "left", "right": "right", "bilateral": "bilateral", "midline": "midline"}

_NEGATIONS: dict[str, tuple[str, ...]] = {
    "acute_infarct": (
        "No restricted diffusion to suggest acute infarction.",
        "No evidence of acute ischaemia.",
        "There is no diffusion restriction to indicate an acute infarct.",
        "No acute territorial infarct.",
        "No features of acute stroke.",
        "Diffusion-weighted imaging shows no acute ischaemic change.",
    ),
    "haemorrhage": (
        "No evidence of intracranial haemorrhage.",
        "No intracranial haemorrhage.",
        "There is no blood product on susceptibility-weighted imaging.",
        "No haemorrhage or haematoma.",
        "No evidence of intracranial bleed.",
        "No susceptibility artefact to suggest prior haemorrhage.",
    ),
    "meningioma": (
        "No extra-axial mass.",
        "No extra-axial collection or mass lesion.",
        "No meningioma or other dural-based lesion.",
        "No abnormal meningeal or dural enhancement.",
    ),
    "hydrocephalus": (
        "The ventricles are normal in size.",
        "No hydrocephalus.",
        "Ventricular size is within normal limits.",
        "The ventricles and basal cisterns are of normal calibre; no hydrocephalus.",
        "No ventriculomegaly.",
    ),
    "demyelination": (
        "No demyelinating lesions.",
        "No white matter lesions to suggest demyelination.",
        "No periventricular or juxtacortical lesions typical of multiple sclerosis.",
        "No white matter lesions typical of demyelination.",
    ),
    "tumour": (
        "No intracranial mass lesion.",
        "No space-occupying lesion.",
        "No intra-axial mass.",
        "No evidence of intracranial neoplasm.",
        "No tumour identified.",
    ),
}

_NORMALS_FINDINGS: tuple[tuple[str, frozenset[str]], ...] = (
    # (sentence, findings it would contradict)
    ("Normal grey-white matter differentiation.", frozenset({"acute_infarct", "tumour"})),
    ("Normal flow voids in the major intracranial vessels.", frozenset()),
    ("The posterior fossa structures are unremarkable.", frozenset({"__posterior__"})),
    ("No midline shift.", frozenset({"__mass__"})),
    ("The pituitary gland and craniocervical junction are unremarkable.", frozenset()),
    ("The visualised paranasal sinuses and mastoid air cells are clear.", frozenset()),
    ("The orbits are unremarkable.", frozenset()),
    ("Mild mucosal thickening in the maxillary sinuses.", frozenset()),
    ("The brain parenchyma is of normal signal intensity.", frozenset(FINDINGS)),
    ("Basal cisterns are patent.", frozenset({"__mass__"})),
)

_AGE_NORMAL = (
    "Age-appropriate cerebral volume.",
    "Mild generalised volume loss, appropriate for age.",
    "Cerebral volume is within normal limits for age.",
)

_NORMAL_IMPRESSIONS = (
    "Normal MRI brain.",
    "No acute intracranial abnormality.",
    "Normal appearances of the brain.",
    "No intracranial abnormality identified.",
    "Unremarkable MRI of the head.",
    "Normal study.",
)

_INDICATIONS: dict[str | None, tuple[str, ...]] = {
    None: (
        "Headache.",
        "Dizziness.",
        "Follow-up.",
        "Seizure.",
        "Memory impairment.",
        "Visual disturbance.",
        "Chronic headaches, rule out structural lesion.",
    ),
    "acute_infarct": (
        "Sudden onset left-sided weakness, ?stroke.",
        "Acute speech disturbance, query CVA.",
        "Facial droop. Rule out acute infarct.",
    ),
    "haemorrhage": (
        "Fall on anticoagulation, ?bleed.",
        "Sudden severe headache, query haemorrhage.",
    ),
    "meningioma": ("Progressive headache, ?mass.", "Incidental lesion on CT, characterise."),
    "hydrocephalus": (
        "Gait disturbance and urinary incontinence, ?NPH.",
        "Raised intracranial pressure?",
    ),
    "demyelination": ("Optic neuritis, ?MS.", "Paraesthesia, query demyelination."),
    "tumour": ("New onset seizure, ?space-occupying lesion.", "Personality change, ?tumour."),
}


def _size_text(rng: np.random.Generator, size_mm: float) -> str:
    a = max(size_mm, 2.0)
    b = max(round(a * rng.uniform(0.6, 0.95)), 1)
    if rng.random() < 0.35 and a >= 10:
        return f"{a / 10:.1f} x {b / 10:.1f} cm"
    if rng.random() < 0.5:
        return f"{round(a)} x {b} mm"
    return f"{round(a)} mm"


def _where(d: FindingDescriptor, rng: np.random.Generator) -> str:
    loc = d.location[0] if d.location else "cerebral hemisphere"
    if d.side in {"left", "right"}:
        return f"{d.side} {loc}"
    if d.side == "bilateral":
        return f"bilateral {loc}" if len(d.location) == 1 else " and ".join(d.location[:2])
    return loc


def _positive(
    d: FindingDescriptor, rng: np.random.Generator
) -> tuple[list[tuple[str, bool]], tuple[str, bool]]:
    """(findings-section sentences, impression sentence) with hedged flags."""
    where = _where(d, rng)
    size = _size_text(rng, d.size_mm)
    a = d.attributes
    pick = lambda options: str(rng.choice(options))  # noqa: E731
    if d.finding == "acute_infarct":
        terr = str(a.get("territory", "middle cerebral artery"))
        terr_short = {
            "middle cerebral artery": "MCA",
            "anterior cerebral artery": "ACA",
            "posterior cerebral artery": "PCA",
            "posterior inferior cerebellar artery": "PICA",
        }.get(terr, "")
        noun = pick(["infarct", "infarction", "ischaemic stroke", "acute ischaemia"])
        if a.get("variant") == "emboli":
            s1 = (
                f"Multiple small foci of restricted diffusion in the {where}, "
                f"the largest measuring {size}, in keeping with embolic infarcts."
            )
        elif a.get("variant") == "lacunar":
            s1 = f"Small focus of restricted diffusion in the {where} measuring {size}, an acute lacunar infarct."
        else:
            s1 = pick(
                [
                    f"There is an area of restricted diffusion in the {where} measuring {size}, with low ADC values, consistent with acute {noun}.",
                    f"Acute {noun} in the {terr} territory involving the {where}, measuring approximately {size}.",
                    f"High DWI signal with corresponding ADC hypointensity in the {where} ({size}), in keeping with an acute infarct.",
                ]
            )
        s2 = pick(
            [
                "Mild associated T2/FLAIR hyperintensity.",
                "Subtle corresponding FLAIR signal change.",
                "No haemorrhagic transformation.",
                "",
            ]
        )
        hedged = bool(a.get("subtle", False)) and rng.random() < 0.5
        if hedged:
            imp = (
                f"Subtle focus of restricted diffusion in the {where}; "
                f"a small acute infarct cannot be excluded."
            )
        else:
            imp = pick(
                [
                    f"Acute {d.side} {terr_short or terr} territory infarct.".replace(
                        "midline ", ""
                    ),
                    f"Acute {noun} in the {where}.",
                    f"Findings in keeping with acute {d.side} sided stroke.".replace(
                        "midline sided ", ""
                    ),
                ]
            )
        found = [(s1, False)] + ([(s2, False)] if s2 and "haemorrhagic" not in s2 else [])
        return found, (imp, hedged)
    if d.finding == "haemorrhage":
        age = str(a.get("blood_age", "acute")).replace("_", " ")
        noun = pick(["haemorrhage", "haematoma", "intraparenchymal haemorrhage", "bleed"])
        s1 = pick(
            [
                f"There is a {age} {noun} in the {where} measuring {size}, with blooming on susceptibility-weighted imaging.",
                f"{age.capitalize()} intraparenchymal haematoma in the {where}, {size}.",
                f"Focus of susceptibility artefact in the {where} ({size}) consistent with {age} blood products.",
            ]
        )
        extra = []
        if a.get("oedema"):
            extra.append(
                (
                    pick(
                        ["There is surrounding vasogenic oedema.", "Perilesional oedema is noted."]
                    ),
                    False,
                )
            )
        if a.get("mass_effect"):
            extra.append(
                ("There is local mass effect with effacement of the adjacent sulci.", False)
            )
        imp = pick(
            [
                f"{age.capitalize()} {noun} in the {where}.",
                f"{where.capitalize()} {age} haemorrhage.",
            ]
        )
        return [(s1, False), *extra], (imp, False)
    if d.finding == "meningioma":
        loc = d.location[0] if d.location else "convexity"
        side = "" if d.side == "midline" else f"{d.side} "
        s1 = pick(
            [
                f"Extra-axial, dural-based mass along the {side}{loc} measuring {size}, with avid homogeneous enhancement and a dural tail.",
                f"There is a {size} homogeneously enhancing extra-axial lesion at the {side}{loc}, broad-based on the dura.",
                f"Well-circumscribed dural-based lesion at the {side}{loc} ({size}), isointense to grey matter, enhancing avidly.",
            ]
        )
        extra = []
        if a.get("mass_effect"):
            extra.append(("It exerts mass effect on the underlying cortex.", False))
        if a.get("oedema"):
            extra.append(("Mild oedema in the adjacent brain parenchyma.", False))
        hedged = rng.random() < 0.4
        imp = (
            f"{side.capitalize()}{loc} extra-axial lesion, likely a meningioma."
            if hedged
            else f"{side.capitalize()}{loc} meningioma."
        )
        return [(s1, False), *extra], (imp.strip().capitalize(), hedged)
    if d.finding == "hydrocephalus":
        s1 = pick(
            [
                "The lateral and third ventricles are dilated, out of proportion to the sulci.",
                "There is ventriculomegaly with enlargement of the lateral ventricles and temporal horns.",
                "Marked dilatation of the ventricular system.",
            ]
        )
        extra = []
        if a.get("transependymal"):
            extra.append(
                (
                    pick(
                        [
                            "Periventricular FLAIR hyperintensity in keeping with transependymal oedema.",
                            "Smooth periventricular T2 signal suggesting transependymal CSF flow.",
                        ]
                    ),
                    False,
                )
            )
        hedged = rng.random() < 0.25
        imp = (
            "Ventriculomegaly, likely representing hydrocephalus."
            if hedged
            else pick(
                [
                    "Hydrocephalus.",
                    "Communicating hydrocephalus."
                    if a.get("variant") == "communicating"
                    else "Obstructive hydrocephalus.",
                    "Hydrocephalus with transependymal oedema."
                    if a.get("transependymal")
                    else "Dilated ventricles in keeping with hydrocephalus.",
                ]
            )
        )
        return [(s1, False), *extra], (imp, hedged)
    if d.finding == "demyelination":
        n = d.count
        regions = ", ".join(d.location)
        count_word = "several" if n < 6 else "multiple" if n < 10 else "numerous"
        s1 = pick(
            [
                f"There are {count_word} ovoid T2/FLAIR hyperintense white matter lesions in {regions} distribution, the largest {size}.",
                f"{count_word.capitalize()} FLAIR hyperintense foci in the {regions} white matter, some perpendicular to the ventricles.",
                f"{n} T2 hyperintense lesions ({regions}), measuring up to {size}.",
            ]
        )
        active = int(a.get("active_count", 0))  # type: ignore[call-overload]
        extra = []
        if active:
            extra.append(
                (
                    f"{active} of the lesions show{'s' if active == 1 else ''} enhancement, indicating active demyelination.",
                    False,
                )
            )
        hedged = rng.random() < 0.3
        imp = (
            "White matter lesions in a pattern that is likely demyelinating."
            if hedged
            else pick(
                [
                    "Appearances in keeping with demyelination.",
                    "Multifocal white matter lesions consistent with multiple sclerosis.",
                    "Demyelinating disease" + (" with active lesions." if active else "."),
                ]
            )
        )
        return [(s1, False), *extra], (imp, hedged)
    # tumour
    variant = str(a.get("variant", "high_grade"))
    if variant == "low_grade":
        s1 = f"Non-enhancing, T2/FLAIR hyperintense intra-axial mass in the {where} measuring {size}."
        imp = pick(
            [
                f"{where.capitalize()} intra-axial mass, likely a low-grade glioma.",
                f"Non-enhancing {where} tumour, likely low grade.",
            ]
        )
        hedged = "likely" in imp
    elif variant == "metastasis":
        s1 = f"Ring-enhancing lesion in the {where} measuring {size} with extensive surrounding oedema."
        imp = pick(
            [
                f"Enhancing {where} lesion, most likely a metastasis.",
                f"{where.capitalize()} enhancing mass; metastasis is favoured over primary tumour.",
            ]
        )
        hedged = True
    else:
        s1 = pick(
            [
                f"Heterogeneous intra-axial mass in the {where} measuring {size} with irregular peripheral enhancement and central necrosis.",
                f"There is a {size} rim-enhancing necrotic mass in the {where}, with surrounding vasogenic oedema.",
            ]
        )
        imp = pick(
            [
                f"{where.capitalize()} necrotic enhancing mass in keeping with high-grade glioma.",
                f"Aggressive intra-axial tumour in the {where}, likely glioblastoma.",
            ]
        )
        hedged = "likely" in imp
    extra = []
    if a.get("mass_effect"):
        extra.append(("There is mass effect with sulcal effacement and mild midline shift.", False))
    return [(s1, False), *extra], (imp, hedged)


def random_descriptor(finding: str, rng: np.random.Generator) -> FindingDescriptor:
    """A plausible descriptor for a finding without an image (report-only generation)."""
    side = str(rng.choice(["left", "right"]))
    lobes = ["frontal lobe", "parietal lobe", "temporal lobe", "occipital lobe", "basal ganglia"]
    if finding == "hydrocephalus":
        return FindingDescriptor(
            finding,
            "bilateral",
            ["lateral ventricles"],
            45.0,
            attributes={
                "transependymal": bool(rng.random() < 0.6),
                "variant": str(rng.choice(["communicating", "obstructive"])),
            },
        )
    if finding == "demyelination":
        n = int(rng.integers(2, 14))
        return FindingDescriptor(
            finding,
            "bilateral",
            ["periventricular", "juxtacortical"][: int(rng.integers(1, 3))],
            float(rng.uniform(4, 12)),
            count=n,
            attributes={"active_count": int(rng.integers(0, 3))},
        )
    if finding == "meningioma":
        loc = str(rng.choice(["convexity", "parasagittal", "sphenoid wing", "posterior fossa"]))
        return FindingDescriptor(
            finding,
            side,
            [loc],
            float(rng.uniform(10, 45)),
            attributes={"mass_effect": bool(rng.random() < 0.4)},
        )
    size = float(rng.uniform(4, 60))
    attrs: dict[str, object] = {
        "subtle": size < 10,
        "mass_effect": bool(size > 35 and rng.random() < 0.5),
    }
    if finding == "haemorrhage":
        attrs["blood_age"] = str(
            rng.choice(["hyperacute", "acute", "early_subacute", "late_subacute", "chronic"])
        )
        attrs["oedema"] = bool(rng.random() < 0.5)
    if finding == "acute_infarct":
        attrs["territory"] = str(
            rng.choice(
                ["middle cerebral artery", "posterior cerebral artery", "anterior cerebral artery"]
            )
        )
        attrs["variant"] = str(rng.choice(["mca", "lacunar", "emboli", "pca"]))
    if finding == "tumour":
        attrs["variant"] = str(rng.choice(["high_grade", "low_grade", "metastasis"]))
    return FindingDescriptor(finding, side, [str(rng.choice(lobes))], size, attributes=attrs)


_TYPO_SAFE = re.compile(r"^[A-Za-z]{6,}$")
_NEGATION_WORDS = {"no", "not", "without", "normal", "negative", "excluded", "unremarkable"}


def _typo(text: str, rng: np.random.Generator) -> str:
    words = text.split(" ")
    candidates = [
        i for i, w in enumerate(words) if _TYPO_SAFE.match(w) and w.lower() not in _NEGATION_WORDS
    ]
    if not candidates:
        return text
    i = int(rng.choice(candidates))
    w = words[i]
    j = int(rng.integers(1, len(w) - 2))
    kind = rng.integers(0, 3)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif kind == 1:
        w = w[:j] + w[j + 1 :]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def _american(text: str) -> str:
    for gb, us in _AMERICAN.items():
        text = text.replace(gb, us)
    return text


def generate_report(
    findings: Mapping[str, bool] | Sequence[FindingDescriptor],
    rng: np.random.Generator,
    *,
    sequences: Sequence[str] = ("T1", "T2", "FLAIR", "DWI", "SWI"),
    contrast: bool = False,
    age: int = 50,
) -> Report:
    """Write a report for a study.

    Args:
        findings: either truth per finding id (descriptors are then drawn at random:
            fine for report-encoder training) or the descriptors of the rendered
            lesions (side, lobe, size agree with the image).
        rng: random generator (the report is a function of it and the findings).
        sequences: truth classes acquired (the technique line names them).
        contrast: gadolinium was given.
        age: patient age in years (age-appropriate volume statements).

    Returns:
        The report with the truth of every sentence.
    """
    if isinstance(findings, Mapping):
        descriptors = [random_descriptor(f, rng) for f in FINDINGS if findings.get(f, False)]
    else:
        descriptors = list(findings)
    present = {d.finding for d in descriptors}
    mass = any(bool(d.attributes.get("mass_effect")) for d in descriptors)
    posterior = any(
        any(
            loc in {"cerebellar hemisphere", "vermis", "brainstem", "posterior fossa"}
            for loc in d.location
        )
        for d in descriptors
    )
    american = rng.random() < 0.4
    sentences: list[Sentence] = []

    # indication
    if rng.random() < 0.85:
        key: str | None = None
        if present and rng.random() < 0.6:
            key = str(rng.choice(sorted(present)))
        elif rng.random() < 0.25:
            key = str(rng.choice(FINDINGS))
        text = str(rng.choice(_INDICATIONS[key]))
        sentences.append(Sentence(text, "indication", key, "query" if key else "normal"))
    # technique
    names = {
        "T1": "T1",
        "T1C": "post-contrast T1",
        "T2": "T2",
        "FLAIR": "FLAIR",
        "DWI": "DWI/ADC",
        "SWI": "SWI",
        "ADC": "",
        "LOCALIZER": "",
    }
    seq_text = ", ".join(n for n in (names.get(s, s) for s in sequences) if n)
    tech = str(
        rng.choice(
            [
                f"Multiplanar multisequence MRI of the brain ({seq_text}).",
                f"MRI head: {seq_text}.",
                f"Sequences: {seq_text}.",
            ]
        )
    )
    if contrast:
        tech += str(
            rng.choice([" Post-gadolinium imaging performed.", " With and without IV contrast."])
        )
    sentences.append(Sentence(tech, "technique", None, "normal"))

    # findings section
    body: list[Sentence] = []
    if rng.random() < 0.3:
        body.append(
            Sentence(
                str(rng.choice(["Comparison: none.", "No prior imaging for comparison."])),
                "findings",
                None,
                "normal",
            )
        )
    order = list(descriptors)
    rng.shuffle(order)  # type: ignore[arg-type]
    impressions: list[Sentence] = []
    for d in order:
        found, (imp, hedged) = _positive(d, rng)
        for text, h in found:
            body.append(Sentence(text, "findings", d.finding, "present", h))
        impressions.append(Sentence(imp, "impression", d.finding, "present", hedged))
    absent = [f for f in FINDINGS if f not in present]
    n_neg = int(rng.integers(1, len(absent) + 1)) if absent else 0
    for f in list(rng.permutation(absent))[:n_neg]:
        body.append(Sentence(str(rng.choice(_NEGATIONS[str(f)])), "findings", str(f), "absent"))
    contradicted = set(present)
    if mass:
        contradicted.add("__mass__")
    if posterior:
        contradicted.add("__posterior__")
    normals = [s for s, bad in _NORMALS_FINDINGS if not (bad & contradicted)]
    for s in rng.permutation(normals)[: int(rng.integers(1, 4))]:
        body.append(Sentence(str(s), "findings", None, "normal"))
    if "hydrocephalus" not in present:
        body.append(
            Sentence(
                str(rng.choice(_AGE_NORMAL if age > 60 else _AGE_NORMAL[::2])),
                "findings",
                None,
                "normal",
            )
        )
    # radiologists lead with the positive findings; negatives and normals follow
    lead = [s for s in body if s.assertion == "present"]
    rest = [s for s in body if s.assertion != "present"]
    rng.shuffle(rest)  # type: ignore[arg-type]
    body = lead + rest

    if not impressions:
        impressions.append(
            Sentence(str(rng.choice(_NORMAL_IMPRESSIONS)), "impression", None, "normal")
        )
    elif rng.random() < 0.3 and absent:
        f = str(rng.choice(absent))
        impressions.append(Sentence(str(rng.choice(_NEGATIONS[f])), "impression", f, "absent"))

    # spelling and typos
    final: list[Sentence] = []
    typo_budget = int(rng.integers(0, 3)) if rng.random() < 0.2 else 0
    for s in [*sentences, *body, *impressions]:
        text = _american(s.text) if american else s.text
        if typo_budget and s.section in {"findings", "impression"} and rng.random() < 0.3:
            text = _typo(text, rng)
            typo_budget -= 1
        final.append(Sentence(text, s.section, s.finding, s.assertion, s.hedged))

    def join(section: str) -> str:
        return " ".join(s.text for s in final if s.section == section)

    findings_text = join("findings")
    impression_items = [s.text for s in final if s.section == "impression"]
    if len(impression_items) > 1 and rng.random() < 0.6:
        impression_text = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(impression_items))
    else:
        impression_text = " ".join(impression_items)
    parts = []
    indication = join("indication")
    if indication:
        parts.append(
            f"{rng.choice(['Clinical indication', 'History', 'Indication'])}: {indication}"
        )
    parts.append(f"Technique: {join('technique')}")
    parts.append(f"Findings:\n{findings_text}")
    parts.append(f"{rng.choice(['Impression', 'Conclusion', 'IMPRESSION'])}:\n{impression_text}")
    return Report(
        text="\n\n".join(parts),
        findings_section=findings_text,
        impression_section=impression_text,
        sentences=tuple(final),
        spelling="american" if american else "british",
    )
