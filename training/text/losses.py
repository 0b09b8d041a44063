"""Losses of the report encoder: section matching (InfoNCE). MLM comes from transformers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def info_nce(
    a: Tensor, b: Tensor, temperature: float = 0.05, keys: Sequence[str] | None = None
) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (B, D), cosine similarity.

    Row i of ``a`` should match row i of ``b`` and no other row. When ``keys`` are
    given, rows with equal keys (e.g. identical impressions "Normal MRI brain") are
    not used as negatives of each other: false negatives are masked out.
    """
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    if keys is not None:
        same = torch.tensor(
            [[ki == kj for kj in keys] for ki in keys], dtype=torch.bool, device=logits.device
        )
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    )
