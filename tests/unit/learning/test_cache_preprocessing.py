"""A cache is only scored by a bundle whose preprocessing made its tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicom_node.errors import TrainingError
from pipeline.preprocess import PreprocessSpec
from training.data.cache import StudyCache
from training.evaluation.run import evaluate_bundle

from .conftest import Trained


def _cache(spec: dict[str, object]) -> StudyCache:
    return StudyCache(root=Path("/c"), meta={"preprocessing": spec}, studies=[])


def test_same_spec_spelt_differently_is_accepted() -> None:
    spec = PreprocessSpec(spacing_mm=(2.0, 2.0, 2.0), output_shape=(64, 64, 64))
    as_json = spec.model_dump(mode="json")
    _cache(as_json).require_preprocessing(spec.model_dump(), "bundle x")
    # a field left at its default is the same spec
    _cache({"spacing_mm": [2, 2, 2], "output_shape": [64, 64, 64]}).require_preprocessing(
        as_json, "bundle x"
    )


def test_another_spec_is_refused_with_the_fields_named() -> None:
    made = PreprocessSpec(output_shape=(64, 64, 64)).model_dump(mode="json")
    wanted = PreprocessSpec(output_shape=(64, 64, 64), spacing_mm=(2.0, 2.0, 2.0))
    with pytest.raises(TrainingError, match=r"spacing_mm: cache \[1\.0, 1\.0, 1\.0\], bundle x"):
        _cache(made).require_preprocessing(wanted.model_dump(mode="json"), "bundle x")


def test_a_cache_without_a_spec_is_refused() -> None:
    with pytest.raises(TrainingError, match="records no preprocessing"):
        _cache({}).require_preprocessing(PreprocessSpec().model_dump(), "bundle x")


def test_evaluation_refuses_a_cache_made_another_way(trained: Trained, tmp_path: Path) -> None:
    meta_file = trained.cache / "cache.json"
    meta = json.loads(meta_file.read_text())
    other = tmp_path / "other"
    other.mkdir()
    for item in trained.cache.iterdir():
        (other / item.name).symlink_to(item)
    (other / "cache.json").unlink()
    meta["preprocessing"]["spacing_mm"] = [2.0, 2.0, 2.0]
    (other / "cache.json").write_text(json.dumps(meta))
    with pytest.raises(TrainingError, match=r"preprocessed differently.*spacing_mm"):
        evaluate_bundle(trained.bundle, other, tmp_path / "eval", n_boot=10)
    assert not (tmp_path / "eval").exists()
