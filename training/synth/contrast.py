"""Tissue -> signal for each pulse sequence, from relaxation times and diffusivity.

Signal equations (magnitude, arbitrary units):

* spin echo / turbo spin echo: ``PD (1 - exp(-TR/T1)) exp(-TE/T2)``
* inversion recovery (FLAIR): ``PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``
  (for both, TE is :attr:`SequenceParams.contrast_te`: the T2-equivalent echo time
  of a variable-flip-angle 3D turbo spin echo, else the nominal one),
* 3D T1 gradient echo with inversion preparation (MPRAGE / BRAVO / TFE), an
  effective saturation-recovery form ``PD (1 - exp(-TI/T1))^2`` that gives the
  usual white/grey/CSF ratios,
* spoiled gradient echo (SWI, localiser): Ernst equation times ``exp(-TE/T2*)``,
* diffusion-weighted EPI: the T2-weighted EPI signal times ``exp(-b ADC)``,
  per tissue, so that partial volumes mix signals (not diffusivities).

Gadolinium shortens T1: ``1/T1 = 1/T1_0 + r1 C`` (r1 = 4 /s/mM). Susceptibility
(haemorrhage) adds ``R2'`` to gradient-echo decay; its blurred map gives blooming.
Relaxation values are typical literature values at 1.5 T and 3 T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

SequenceKind = Literal["SE", "IR", "T1GRE3D", "GRE", "DWI"]
R1_GADOLINIUM_PER_MS_MM = 4.0e-3


@dataclass(frozen=True)
class Tissue:
    """Relaxation and diffusion properties of one tissue class.

    Attributes:
        pd: proton density (water = 1).
        t1_15, t1_30: T1 (ms) at 1.5 T and 3 T.
        t2: T2 (ms).
        t2s: T2* (ms) without extra susceptibility.
        adc: apparent diffusion coefficient (1e-3 mm^2/s).
        gd: gadolinium concentration after injection (mM) in the imaged voxel.
        r2p: extra susceptibility dephasing R2' (1/ms) (blood products, bone).
        fat: fraction of the signal that is fat (suppressed on DWI).
    """

    pd: float
    t1_15: float
    t1_30: float
    t2: float
    t2s: float
    adc: float
    gd: float = 0.0
    r2p: float = 0.0
    fat: float = 0.0

    def t1(self, field_t: float) -> float:
        """T1 (ms) at a field strength, interpolated between 1.5 and 3 T."""
        w = float(np.clip((field_t - 1.5) / 1.5, 0.0, 1.0))
        return (1 - w) * self.t1_15 + w * self.t1_30


TISSUES: dict[str, Tissue] = {
    "wm": Tissue(0.69, 650, 840, 75, 50, 0.75),
    "gm": Tissue(0.80, 1050, 1350, 95, 60, 0.85),
    "csf": Tissue(1.00, 4000, 4300, 1800, 400, 3.0),
    "bone": Tissue(0.06, 1000, 1200, 8, 1.5, 0.2, r2p=0.3),
    "marrow": Tissue(0.85, 300, 380, 70, 20, 0.3, fat=0.8),
    "muscle": Tissue(0.72, 900, 1400, 40, 28, 1.4, gd=0.08),
    "fat": Tissue(0.90, 260, 370, 80, 35, 0.05, fat=1.0),
    "skin": Tissue(0.75, 700, 900, 50, 30, 1.0, gd=0.1),
    "vitreous": Tissue(0.98, 3800, 4100, 1200, 300, 2.9),
    "air": Tissue(0.0, 1000, 1000, 1, 1, 0.0),
    # dura and meninges enhance mildly after contrast
    "dura": Tissue(0.5, 800, 1000, 40, 25, 1.0, gd=0.25),
    # flowing venous blood (sinuses): flow void on spin echo, enhances, dark on SWI
    "venous_sinus": Tissue(0.30, 1300, 1600, 30, 8, 1.5, gd=1.5, r2p=0.12),
    # iron-rich deep grey matter (pallidum, red nucleus, dentate): dark on SWI
    "iron_gm": Tissue(0.78, 1000, 1250, 75, 28, 0.8, r2p=0.02),
    # lesions
    "infarct_core": Tissue(0.84, 1150, 1450, 125, 60, 0.38),
    "infarct_penumbra": Tissue(0.80, 1050, 1350, 105, 60, 0.55),
    "oedema": Tissue(0.86, 1250, 1550, 160, 75, 1.45),
    "periventricular_oedema": Tissue(0.88, 1300, 1600, 190, 80, 1.35),
    "blood_hyperacute": Tissue(0.88, 1000, 1300, 110, 8, 0.7, r2p=0.15),
    "blood_acute": Tissue(0.85, 950, 1250, 35, 4, 0.6, r2p=0.25),
    "blood_early_subacute": Tissue(0.85, 320, 420, 40, 4, 0.5, r2p=0.25),
    "blood_late_subacute": Tissue(0.90, 320, 420, 260, 15, 0.9, r2p=0.1),
    "blood_chronic": Tissue(0.70, 900, 1100, 20, 2, 0.8, r2p=0.35),
    "meningioma": Tissue(0.80, 1100, 1400, 90, 45, 0.80, gd=0.55),
    "dural_tail": Tissue(0.7, 900, 1100, 60, 30, 1.0, gd=0.45),
    "tumour_rim": Tissue(0.84, 1150, 1500, 115, 50, 0.95, gd=0.5),
    "tumour_necrosis": Tissue(0.95, 2400, 2800, 420, 150, 2.3),
    "tumour_solid": Tissue(0.84, 1150, 1500, 120, 55, 1.05, gd=0.05),
    "plaque": Tissue(0.82, 950, 1200, 150, 65, 1.15),
    "plaque_active": Tissue(0.83, 1000, 1250, 155, 65, 1.3, gd=0.3),
    "plaque_black_hole": Tissue(0.86, 1500, 1900, 190, 70, 1.5),
}


@dataclass(frozen=True)
class SequenceParams:
    """Timing of one acquisition; the same numbers are written into the headers.

    Attributes:
        kind: family of signal equation.
        tr, te, ti: repetition, echo and inversion time (ms); ti 0 when unused.
        flip: flip angle (degrees).
        b_value: diffusion weighting (s/mm^2) for DWI.
        contrast: post-gadolinium acquisition.
        fat_sat: fat suppression (DWI always, some T1C).
        te_equivalent: T2-equivalent echo time (ms) of a variable-flip-angle 3D
            turbo spin echo (SPACE, CUBE, VIEW); 0 for "the nominal TE". The
            modulated refocusing angles of their long echo trains slow the T2
            decay, so a nominal TE of 300-400 ms weights T2 like a conventional
            TE of a third to two fifths of it; putting the nominal TE into the signal
            equation leaves CSF brighter than white matter on a 3D FLAIR, which
            no scanner shows. Headers keep the nominal ``te``.
    """

    kind: SequenceKind
    tr: float
    te: float
    ti: float = 0.0
    flip: float = 90.0
    b_value: float = 0.0
    contrast: bool = False
    fat_sat: bool = False
    te_equivalent: float = 0.0

    @property
    def contrast_te(self) -> float:
        """The echo time (ms) that sets the image's T2 weighting."""
        return self.te_equivalent or self.te


def tissue_signal(t: Tissue, p: SequenceParams, field_t: float) -> float:
    """Signal of a voxel filled with tissue ``t`` under sequence ``p`` (arbitrary units)."""
    t1 = t.t1(field_t)
    r1 = 1.0 / t1 + (R1_GADOLINIUM_PER_MS_MM * t.gd if p.contrast else 0.0)
    t1 = 1.0 / r1
    pd = t.pd * (1.0 - 0.9 * t.fat) if (p.fat_sat or p.kind == "DWI") else t.pd
    # T2 shortens slightly at 3 T
    t2 = t.t2 * (1.0 - 0.1 * float(np.clip((field_t - 1.5) / 1.5, 0.0, 1.0)))
    if p.kind == "SE":
        s = pd * (1 - np.exp(-p.tr / t1)) * np.exp(-p.contrast_te / t2)
    elif p.kind == "IR":
        s = pd * abs(1 - 2 * np.exp(-p.ti / t1) + np.exp(-p.tr / t1)) * np.exp(-p.contrast_te / t2)
    elif p.kind == "T1GRE3D":
        s = pd * (1 - np.exp(-p.ti / t1)) ** 2 * np.exp(-p.te / max(t.t2s, 1.0))
    elif p.kind == "GRE":
        e1 = np.exp(-p.tr / t1)
        a = np.deg2rad(p.flip)
        r2s = 1.0 / max(t.t2s, 0.5) + t.r2p
        s = pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1) * np.exp(-p.te * r2s) * 4.0
    elif p.kind == "DWI":
        r2s = 1.0 / t2 + 0.3 * t.r2p
        s = pd * (1 - np.exp(-p.tr / t1)) * np.exp(-p.te * r2s)
        s *= np.exp(-p.b_value * t.adc * 1e-3)
    else:  # pragma: no cover - Literal exhausts the kinds
        raise ValueError(p.kind)
    return float(s)
