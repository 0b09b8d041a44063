"""Writing a model bundle folder: ``manifest.json`` + fp16 ``weights.safetensors`` + tokenizer.

See :mod:`pipeline.model.manifest` for the layout. The manifest is validated
with the same schema :func:`pipeline.model.load_bundle` uses before anything is
written, and the device UID is derived from the weights' SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from safetensors.torch import save_file
from torch import Tensor, nn

from dicom_node.errors import BundleError
from pipeline.model.manifest import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    Manifest,
    NetworkSpec,
    TextEncoderSpec,
    TrainingDataSummary,
    WeightsSpec,
    device_uid_from_hash,
    sha256_file,
)
from pipeline.model.queries import QueryBank
from pipeline.model.scoring import ScoringSpec


def fp16_state(prefix: str, module: nn.Module) -> dict[str, Tensor]:
    """A module's state dict with floating tensors in float16, keys prefixed."""
    out = {}
    for key, value in module.state_dict().items():
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.half()
        out[prefix + key] = tensor.contiguous()
    return out


def training_data_hash(items: Iterable[tuple[str, str]]) -> str:
    """SHA-256 of the sorted ``key<TAB>split`` lines of the training cache."""
    digest = hashlib.sha256()
    for key, split in sorted(items):
        digest.update(f"{key}\t{split}\n".encode())
    return digest.hexdigest()


def write_bundle(
    out_dir: Path,
    *,
    name: str,
    version: str,
    text_model: nn.Module,
    text_config: Mapping[str, Any],
    tokenizer_file: Path,
    max_length: int,
    image_encoders: Mapping[str, tuple[nn.Module, NetworkSpec]],
    preprocessing: Mapping[str, Any],
    queries: QueryBank,
    scoring: ScoringSpec,
    training_data: TrainingDataSummary,
    metrics: Mapping[str, Any] | None = None,
    created: datetime | None = None,
) -> Manifest:
    """Write a bundle folder and return its manifest.

    Args:
        text_model: the ``RobertaModel`` (no MLM head).
        text_config: its ``RobertaConfig`` as a dict.
        image_encoders: sequence -> (network, its class name and init args).

    Raises:
        BundleError: the description does not validate (nothing is left half-written
            under ``out_dir``'s manifest name).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = fp16_state("text.", text_model)
    for seq, (net, _) in image_encoders.items():
        tensors.update(fp16_state(f"image.{seq}.", net))
    weights_path = out_dir / WEIGHTS_FILE
    # One metadata entry only: safetensors writes several in random order (unstable hash).
    save_file(tensors, str(weights_path), metadata={"format": "pt"})
    weights_hash = sha256_file(weights_path)
    tokenizer_path = out_dir / TOKENIZER_FILE
    if tokenizer_file.resolve() != tokenizer_path.resolve():
        shutil.copyfile(tokenizer_file, tokenizer_path)
    try:
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            name=name,
            version=version,
            device_uid=device_uid_from_hash(weights_hash),
            created=created or datetime.now(UTC),
            sequences=list(image_encoders),
            image_encoders={seq: spec for seq, (_, spec) in image_encoders.items()},
            preprocessing=dict(preprocessing),
            text_encoder=TextEncoderSpec(
                config=dict(text_config),
                tokenizer_file=TOKENIZER_FILE,
                tokenizer_sha256=sha256_file(tokenizer_path),
                max_length=max_length,
            ),
            queries=queries,
            scoring=scoring,
            metrics=dict(metrics or {}),
            training_data=training_data,
            weights=WeightsSpec(file=WEIGHTS_FILE, sha256=weights_hash),
        )
    except ValidationError as exc:
        raise BundleError(f"bundle {name} {version}: invalid description: {exc}") from exc
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    """(Re)write ``manifest.json`` (e.g. to add evaluation metrics; weights unchanged)."""
    path = out_dir / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path
