from __future__ import annotations

import pytest
import torch

from training.image.losses import alignment_loss
from training.text.losses import info_nce


def test_info_nce_prefers_matched_pairs() -> None:
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    matched = info_nce(a, a + 0.01 * torch.randn(8, 16))
    shuffled = info_nce(a, a[torch.randperm(8)])
    assert matched < 0.1 < shuffled


def test_info_nce_masks_duplicate_keys_as_negatives() -> None:
    a = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]]), dim=-1)
    unmasked = info_nce(a, a)
    masked = info_nce(a, a, keys=["normal", "normal", "bleed"])
    # rows 0 and 1 are identical: without masking each is a hard false negative of the other
    assert masked < unmasked
    assert masked < 1e-3


def test_info_nce_gradients_flow() -> None:
    a = torch.randn(4, 8, requires_grad=True)
    info_nce(a, torch.randn(4, 8)).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_alignment_loss() -> None:
    target = torch.nn.functional.normalize(torch.randn(4, 10), dim=-1)
    assert alignment_loss(target, target) == 0
    pred = 3 * target  # same direction, wrong norm
    assert alignment_loss(pred, target) > 0
    assert alignment_loss(pred, target, normalize_prediction=True) == pytest.approx(0, abs=1e-7)
    other = torch.nn.functional.normalize(torch.randn(4, 10), dim=-1)
    cos = (other * target).sum(-1)
    expected = ((2 - 2 * cos) / 10).mean()
    assert alignment_loss(other, target, True) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="shape"):
        alignment_loss(torch.zeros(2, 3), torch.zeros(2, 4))
