"""The sequence classes a brain MRI series is sorted into."""

from __future__ import annotations

from enum import StrEnum


class SequenceClass(StrEnum):
    """What a series is, as a neuroradiologist's hanging protocol sees it.

    ``T1C`` is a post-contrast T1-weighted series; ``DWI`` a diffusion-weighted
    series (any b-values); ``ADC`` an apparent diffusion coefficient map;
    ``SWI`` susceptibility-weighted magnitude, processed SWI or its minimum
    intensity projection. Everything the models do not use (perfusion, fMRI,
    angiography, PD, T2* GRE, phase images, calibration scans ...) is ``OTHER``.
    """

    T1 = "T1"
    T1C = "T1C"
    T2 = "T2"
    FLAIR = "FLAIR"
    DWI = "DWI"
    ADC = "ADC"
    SWI = "SWI"
    LOCALIZER = "LOCALIZER"
    OTHER = "OTHER"
