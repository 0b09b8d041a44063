"""The committed demo bundle (``deploy/models/demo``, made by ``make demo-model``).

``make run`` analyses with it when no other bundle is configured, so it must load,
validate, carry a calibrated threshold for every finding and stay small.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from pipeline.analysis import DEMO_BUNDLE
from pipeline.model import load_bundle
from pipeline.model.operating_points import resolve_operating_points
from pipeline.model.queries import default_query_bank
from training.bundles.calibrate import (
    parse_heatmap_sequences,
    parse_heatmap_sources,
    resolve_heatmap_sources,
)
from training.demo import build_parser

MAX_BYTES = 25 * 1024 * 1024


def test_demo_bundle_loads_with_thresholds_and_is_small() -> None:
    bundle = load_bundle(DEMO_BUNDLE)
    size = sum(f.stat().st_size for f in DEMO_BUNDLE.rglob("*") if f.is_file())
    assert size <= MAX_BYTES, f"demo bundle is {size / 2**20:.1f} MB"
    assert set(bundle.sequences) == {"T2", "FLAIR", "DWI", "T1C"}
    bank = bundle.manifest.queries
    assert bank.finding_ids == default_query_bank().finding_ids
    for finding in bank.findings:
        assert finding.threshold is not None, f"{finding.id} has no threshold"
    # the held-out-site evaluation is stored with it
    manifest = json.loads((DEMO_BUNDLE / "manifest.json").read_text(encoding="utf-8"))
    assert "abnormal" in json.dumps(manifest["metrics"])


def test_demo_defaults_draw_the_heatmaps_the_committed_bundle_draws() -> None:
    """``make demo-model`` must make the committed bundle: its heatmap options resolve to
    the bundle's (tumour from the mean of every sequence's map, haemorrhage on FLAIR)."""
    defaults = vars(build_parser().parse_args(["--out", "unused"]))
    bundle = load_bundle(DEMO_BUNDLE)
    spec = bundle.manifest.scoring
    sources = parse_heatmap_sources(str(defaults["heatmap_sources"]))
    bank = bundle.manifest.queries.finding_ids
    assert resolve_heatmap_sources(sources, bank, bundle.sequences) == spec.heatmap_sources
    assert spec.heatmap_sources == {"tumour": sorted(bundle.sequences)}
    for finding, sequence in parse_heatmap_sequences(str(defaults["heatmap_sequences"])).items():
        assert spec.heatmap_sequence[finding] == sequence
    assert defaults["version"] == bundle.version
    points = resolve_operating_points(str(defaults["operating_points"]), bank)
    assert points == {f.id: f.operating_point for f in bundle.manifest.queries.findings}
    assert points["abnormal"] == "sens90" and points["tumour"] == "youden"


def test_demo_bundle_scores_a_volume_deterministically() -> None:
    bundle = load_bundle(DEMO_BUNDLE)
    shape = bundle.preprocess_spec.output_shape
    volume = torch.from_numpy(np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32))
    first = bundle.score(bundle.embed_inputs({"T2": volume}))
    again = bundle.score(bundle.embed_inputs({"T2": volume}))
    assert first.to_dict()["findings"] == again.to_dict()["findings"]
    assert first.triage is not None and 0.0 <= first.triage.score <= 1.0
