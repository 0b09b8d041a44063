"""Fixtures of the analysis tests: a tiny bundle trained here, small synthetic studies on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pipeline.model import ModelBundle, load_bundle
from tests.analysis_support import train_tiny_bundle

BUNDLE_SEQUENCES = ("T2", "FLAIR", "DWI")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread on the shared 2-core machine (see tests/unit/learning)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_bundle(tmp_path_factory.mktemp("tiny"), BUNDLE_SEQUENCES)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_bundle_dir: Path) -> ModelBundle:
    return load_bundle(tiny_bundle_dir)


def write_synthetic(root: Path, seed: int, sequences: list[str], **findings: bool) -> Path:
    """A small synthetic study with exactly ``sequences`` written as DICOM; its folder."""
    from training.synth import generate_study, write_study

    study = generate_study(seed, findings=findings, size="small", sequences=sequences)
    return write_study(study, root)


@pytest.fixture(scope="session")
def abnormal_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """T2, FLAIR, DWI (+ADC) with a haemorrhage."""
    return write_synthetic(
        tmp_path_factory.mktemp("abnormal"), 21, ["T2", "FLAIR", "DWI"], haemorrhage=True
    )
