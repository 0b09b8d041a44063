"""A corrupted or mismatched bundle is refused with a clear BundleError."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from dicom_node.errors import BundleError
from pipeline.model import load_bundle
from pipeline.model.manifest import Manifest
from tests.unit.learning.conftest import Trained
from training.bundles.writer import write_bundle, write_manifest


@pytest.fixture
def bundle_copy(trained: Trained, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.bundle, tmp_path / "bundle"))


def _edit_manifest(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_valid_bundle_loads(bundle_copy: Path) -> None:
    bundle = load_bundle(bundle_copy)
    assert bundle.embed_dim == 64
    assert bundle.manifest.weights.dtype == "float16"


def test_corrupted_weights_are_refused(bundle_copy: Path) -> None:
    weights = bundle_copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrupted or replaced"):
        load_bundle(bundle_copy)


def test_modified_tokenizer_is_refused(bundle_copy: Path) -> None:
    tok = bundle_copy / "tokenizer.json"
    tok.write_text(tok.read_text().replace("<mask>", "<MASK>"))
    with pytest.raises(BundleError, match="tokenizer"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(device_uid="2.25.1"), "device_uid"),
        (lambda m: m.update(schema_version=99), "schema_version"),
        (lambda m: m.update(version="v1"), "semantic version"),
        (lambda m: m.update(surprise=True), "surprise"),
        (lambda m: m.update(sequences=["T2"]), "differ from image_encoders"),
        (lambda m: m["image_encoders"]["T2"]["init_args"].update(embed_dim=32), "embed_dim"),
        (lambda m: m["image_encoders"]["T2"].update(class_name="os.system"), "network class"),
        (lambda m: m["queries"]["findings"][0].update(operating_point="f1"), "operating_point"),
        (
            lambda m: m["scoring"].update(finding_sequences={"abnormal": ["SWI"]}),
            "no encoder for",
        ),
        (lambda m: m["scoring"].update(heatmap_sequence={"abnormal": "T1C"}), "no encoder for"),
        (
            lambda m: m["scoring"].update(heatmap_sources={"abnormal": ["T2", "SWI"]}),
            "no encoder for",
        ),
        (
            lambda m: m["scoring"].update(set_calibration={"abnormal": {"T1C+T2": [1.0, 0.0]}}),
            "no encoder for",
        ),
        (
            lambda m: m["scoring"].update(set_calibration={"abnormal": {"T2": [-1.0, 0.0]}}),
            "positive slope",
        ),
    ],
)
def test_mismatched_manifest_is_refused(
    bundle_copy: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    _edit_manifest(bundle_copy, edit)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_weights_that_do_not_fit_the_network_are_refused(bundle_copy: Path) -> None:
    _edit_manifest(
        bundle_copy, lambda m: m["image_encoders"]["T2"]["init_args"].update(hidden_dim=65)
    )
    with pytest.raises(BundleError, match="T2 image encoder"):
        load_bundle(bundle_copy)


def test_missing_or_unreadable_manifest(bundle_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a directory"):
        load_bundle(tmp_path / "nothing")
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not readable JSON"):
        load_bundle(bundle_copy)
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"manifest\.json not found"):
        load_bundle(bundle_copy)


def test_device_uid_follows_the_weights(bundle_copy: Path, tmp_path: Path) -> None:
    bundle = load_bundle(bundle_copy)
    manifest = bundle.manifest

    def rewrite(out: Path, perturb: bool) -> Manifest:
        images = {}
        for seq, net in bundle.image_encoders.items():
            if perturb and seq == "T2":
                with torch.no_grad():
                    next(net.parameters()).add_(0.5)
            images[seq] = (net, manifest.image_encoders[seq])
        return write_bundle(
            out,
            name=manifest.name,
            version="0.0.2",
            text_model=bundle.text_encoder.model,
            text_config=manifest.text_encoder.config,
            tokenizer_file=bundle_copy / "tokenizer.json",
            max_length=manifest.text_encoder.max_length,
            image_encoders=images,
            preprocessing=manifest.preprocessing,
            queries=manifest.queries,
            scoring=manifest.scoring,
            training_data=manifest.training_data,
        )

    same = rewrite(tmp_path / "same", perturb=False)
    changed = rewrite(tmp_path / "changed", perturb=True)
    assert same.device_uid == manifest.device_uid
    assert changed.device_uid != manifest.device_uid
    assert load_bundle(tmp_path / "changed").device_uid == changed.device_uid
    # metrics can be rewritten without touching the weights or the UID
    write_manifest(tmp_path / "same", same.model_copy(update={"metrics": {"note": 1}}))
    assert load_bundle(tmp_path / "same").manifest.metrics == {"note": 1}


def test_scoring_refuses_unknown_sequences_and_empty_input(bundle_copy: Path) -> None:
    bundle = load_bundle(bundle_copy)
    with pytest.raises(BundleError, match="no usable sequence"):
        bundle.score({})
    with pytest.raises(BundleError, match="no encoder"):
        bundle.score({"SWI": torch.zeros(64)})
    with pytest.raises(BundleError, match="no encoder"):
        bundle.encode_image("SWI", torch.zeros(1, 32, 32, 32))
    with pytest.raises(BundleError, match=r"\(1,D,H,W\)"):
        bundle.encode_image("T2", torch.zeros(32, 32))
