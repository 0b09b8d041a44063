"""The ALIGN objective: regress the study's report embedding from each sequence's image."""

from __future__ import annotations

import torch
from torch import Tensor


def alignment_loss(
    prediction: Tensor, target: Tensor, normalize_prediction: bool = False
) -> Tensor:
    """Mean squared error between image embeddings (B, E) and report embeddings (B, E).

    Targets are unit vectors (mean-pooled, L2-normalised report embeddings). With
    ``normalize_prediction`` the prediction is normalised first, so the loss is
    ``(2 - 2 cos) / E`` per study — a pure direction loss.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} differs from target {tuple(target.shape)}"
        )
    if normalize_prediction:
        prediction = torch.nn.functional.normalize(prediction, dim=-1)
    return torch.nn.functional.mse_loss(prediction.float(), target.float())


def cosine_agreement(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean cosine similarity of predictions and targets (a readable validation metric)."""
    return torch.nn.functional.cosine_similarity(prediction.float(), target.float(), dim=-1).mean()
