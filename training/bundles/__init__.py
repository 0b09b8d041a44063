"""Model bundles: calibration on validation and writing ``manifest.json`` + fp16 weights."""

from __future__ import annotations

from training.bundles.build import BuildResult, build_bundle
from training.bundles.calibrate import calibrate_thresholds, select_scoring
from training.bundles.writer import training_data_hash, write_bundle, write_manifest

__all__ = [
    "BuildResult",
    "build_bundle",
    "calibrate_thresholds",
    "select_scoring",
    "training_data_hash",
    "write_bundle",
    "write_manifest",
]
