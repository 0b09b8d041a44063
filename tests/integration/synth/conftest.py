"""Fixtures for the synthetic-data integration tests: small studies written to disk once."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.synth import SEQUENCES, SITES, SyntheticStudy, generate_study, write_study

ALL_SEQUENCES = tuple(s for s in SEQUENCES if s != "LOCALIZER")
#: two studies per site, chosen so that every site shows both diffusion layouts (b0 and
#: b1000 in one series, or in two) and its optional SWI series (phase, minIP)
SEEDS = {"siemens_a": (21, 26), "ge_b": (21, 25), "philips_c": (21, 22)}


@pytest.fixture(scope="session")
def written_studies(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[SyntheticStudy, Path]]:
    """Small studies of every site (every sequence), written as DICOM files."""
    out = tmp_path_factory.mktemp("synth")
    studies = []
    for site in SITES:
        for seed in SEEDS[site]:
            study = generate_study(
                seed, site, findings={"tumour": True}, size="small", sequences=ALL_SEQUENCES
            )
            studies.append((study, write_study(study, out)))
    return studies
