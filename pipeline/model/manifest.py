"""The bundle manifest (``manifest.json``): a typed, self-describing model description.

A bundle is a folder (MONAI-bundle / nnU-Net ``init_args`` habit)::

    manifest.json          this schema (pydantic, extra fields forbidden)
    weights.safetensors    every network's weights in float16; keys ``image.<SEQ>.*``
                           and ``text.*``
    tokenizer.json         the report tokenizer (``tokenizers`` format)

The ``device_uid`` identifies the trained model as a device (e.g. for the SR's
Algorithm Identification / device observer context). It is derived from the
SHA-256 of the weights file, so it changes whenever the weights change and a
manifest that was edited to point at other weights is refused.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.model.queries import QueryBank
from pipeline.model.scoring import ScoringSpec

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
TOKENIZER_FILE = "tokenizer.json"

_SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SEQUENCE_RE = re.compile(r"^[A-Za-z0-9_+-]{1,32}$")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def device_uid_from_hash(sha256_hex: str) -> str:
    """A DICOM UID under the ``2.25`` root (ISO/IEC 9834-8) from the first 128 bits of a hash."""
    return f"2.25.{int(sha256_hex[:32], 16)}"


class NetworkSpec(BaseModel):
    """An allow-listed network class (see :mod:`.networks`) and its init arguments."""

    model_config = ConfigDict(extra="forbid")

    class_name: str
    init_args: dict[str, Any]


class TextEncoderSpec(BaseModel):
    """The report encoder: its ``RobertaConfig`` as a dict and its tokenizer file."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]
    tokenizer_file: str = TOKENIZER_FILE
    tokenizer_sha256: str
    max_length: int = Field(default=128, gt=0)


class WeightsSpec(BaseModel):
    """The weights file and its hash."""

    model_config = ConfigDict(extra="forbid")

    file: str = WEIGHTS_FILE
    sha256: str
    dtype: Literal["float16"] = "float16"

    @field_validator("sha256")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        if not _SHA256_RE.match(value):
            raise ValueError(f"sha256 {value!r} is not 64 lowercase hex digits")
        return value


class TrainingDataSummary(BaseModel):
    """What the model was trained on (no patient data: counts, sites and a hash)."""

    model_config = ConfigDict(extra="forbid")

    sha256: str
    """Hash of the sorted (study key, split) list of the training cache."""
    studies: dict[str, int] = Field(default_factory=dict)
    """split -> number of studies"""
    sites: dict[str, list[str]] = Field(default_factory=dict)
    """split -> sites"""
    description: str = ""


class Manifest(BaseModel):
    """``manifest.json`` of a model bundle (schema version 1)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int
    name: str = Field(min_length=1, max_length=64)
    version: str
    device_uid: str
    created: datetime
    sequences: list[str] = Field(min_length=1)
    image_encoders: dict[str, NetworkSpec]
    preprocessing: dict[str, Any]
    text_encoder: TextEncoderSpec
    queries: QueryBank
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)
    metrics: dict[str, Any] = Field(default_factory=dict)
    training_data: TrainingDataSummary
    weights: WeightsSpec

    @field_validator("schema_version")
    @classmethod
    def _check_schema(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported (expected {SCHEMA_VERSION})")
        return value

    @field_validator("version")
    @classmethod
    def _check_semver(cls, value: str) -> str:
        if not _SEMVER_RE.match(value):
            raise ValueError(f"version {value!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return value

    @field_validator("sequences")
    @classmethod
    def _check_sequences(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not _SEQUENCE_RE.match(s)]
        if bad or len(set(value)) != len(value):
            raise ValueError(
                f"sequences {value!r} must be unique names matching {_SEQUENCE_RE.pattern}"
            )
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Manifest:
        if set(self.sequences) != set(self.image_encoders):
            raise ValueError(
                f"sequences {sorted(self.sequences)} differ from image_encoders "
                f"{sorted(self.image_encoders)}"
            )
        expected_uid = device_uid_from_hash(self.weights.sha256)
        if self.device_uid != expected_uid:
            raise ValueError(
                f"device_uid {self.device_uid!r} does not derive from the weights hash "
                f"(expected {expected_uid!r})"
            )
        hidden = self.text_encoder.config.get("hidden_size")
        for seq, spec in self.image_encoders.items():
            embed = spec.init_args.get("embed_dim")
            if embed != hidden:
                raise ValueError(
                    f"image_encoders[{seq!r}].init_args.embed_dim={embed!r} differs from "
                    f"text_encoder.config.hidden_size={hidden!r}"
                )
        named = set(self.scoring.heatmap_sequence.values())
        for seqs in self.scoring.heatmap_sources.values():
            named.update(seqs)
        for seqs in self.scoring.finding_sequences.values():
            named.update(seqs)
        for per_set in self.scoring.set_calibration.values():
            for key in per_set:
                named.update(key.split("+"))
        unknown = sorted(named - set(self.sequences))
        if unknown:
            raise ValueError(
                f"scoring names sequences {unknown} that the bundle has no encoder for "
                f"(sequences {sorted(self.sequences)})"
            )
        return self
