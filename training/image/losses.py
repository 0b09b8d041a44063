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


def contrastive_alignment_loss(
    prediction: Tensor, target: Tensor, temperature: float = 0.1
) -> Tensor:
    """Symmetric image-report InfoNCE within a batch (an option beside the ALIGN MSE).

    Report embeddings of one corpus are close to each other (mean-pooled reports
    share most of their words), so MSE to them is dominated by their common mean.
    This term instead asks each image embedding to be nearer its own report than
    the batch's other reports. Rows whose targets are identical (the same text,
    e.g. two "Normal study." impressions) are not negatives of each other.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} differs from target {tuple(target.shape)}"
        )
    from training.text.losses import info_nce

    keys = [row.detach().float().cpu().numpy().tobytes().hex() for row in target]
    return info_nce(prediction.float(), target.float(), temperature, keys=keys)
