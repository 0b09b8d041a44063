from __future__ import annotations

import pytest
import torch

from training.image.losses import alignment_loss, contrastive_alignment_loss
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


def test_contrastive_alignment_prefers_own_report_and_ignores_identical_targets() -> None:
    torch.manual_seed(0)
    targets = torch.nn.functional.normalize(torch.randn(6, 16), dim=-1)
    near = contrastive_alignment_loss(targets + 0.01 * torch.randn(6, 16), targets)
    wrong = contrastive_alignment_loss(targets[torch.tensor([1, 2, 3, 4, 5, 0])], targets)
    assert near < 0.1 < wrong
    # two studies with the same report text: predicting either is not penalised as wrong
    same = targets.clone()
    same[1] = same[0]
    swapped = same[torch.tensor([1, 0, 2, 3, 4, 5])]
    assert contrastive_alignment_loss(swapped, same) < 0.1
    pred = torch.randn(6, 16, requires_grad=True)
    contrastive_alignment_loss(pred, targets).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differs"):
        contrastive_alignment_loss(torch.zeros(6, 8), targets)


def test_constant_baseline_is_the_loss_of_predicting_the_mean_training_target() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from training.image.train import constant_baseline_loss

    targets = {
        "a": torch.tensor([1.0, 0.0]),
        "b": torch.tensor([0.0, 1.0]),
        "c": torch.tensor([1.0, 0.0]),
    }

    def dataset(keys: list[str]) -> Any:
        return SimpleNamespace(items=[SimpleNamespace(key=k) for k in keys], targets=targets)

    # mean of a and b is (0.5, 0.5); c differs from it by 0.5 in each component
    loss = constant_baseline_loss(cast(Any, dataset(["a", "b"])), cast(Any, dataset(["c"])))
    assert loss == pytest.approx(0.25)
    assert constant_baseline_loss(dataset(["a", "c"]), dataset(["c"])) == pytest.approx(0.0)
    assert constant_baseline_loss(dataset([]), dataset(["c"])) != constant_baseline_loss(
        dataset([]), dataset(["c"])
    )  # NaN when a split is empty
