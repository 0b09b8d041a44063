"""Per-sequence image encoders trained to regress report embeddings (ALIGN)."""

from __future__ import annotations

from training.image.losses import alignment_loss
from training.image.train import (
    ImageTrainConfig,
    load_sequence_encoder,
    train_image_encoders,
    train_sequence_encoder,
)

__all__ = [
    "ImageTrainConfig",
    "alignment_loss",
    "load_sequence_encoder",
    "train_image_encoders",
    "train_sequence_encoder",
]
