"""Fixtures of the results-writer unit tests: a small two-sequence MR study."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from pipeline.results.model import StudyIdentity
from tests.results_testdata import make_mr_series, make_study_identity


@pytest.fixture
def study() -> StudyIdentity:
    return make_study_identity(7)


@pytest.fixture
def source_series(study: StudyIdentity) -> dict[str, list[Dataset]]:
    """T1 (series 1) and FLAIR (series 2), 8 axial slices of 64x64 each."""
    return {
        "T1": make_mr_series(study, sequence="T1", series_number=1),
        "FLAIR": make_mr_series(study, sequence="FLAIR", series_number=2),
    }
