from __future__ import annotations

import torch

from training.image.augment import train_augmentation


def test_augmentation_keeps_shape_changes_values_and_is_seeded() -> None:
    z, y, x = torch.meshgrid(*(torch.arange(32.0),) * 3, indexing="ij")
    volume = ((x - 24) ** 2 + (y - 16) ** 2 + (z - 16) ** 2 < 36).float()[None]
    a1, a2 = train_augmentation(seed=3), train_augmentation(seed=3)
    first = [a1(volume) for _ in range(4)]
    again = [a2(volume) for _ in range(4)]
    assert all(o.shape == volume.shape and o.dtype == torch.float32 for o in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.allclose(o, volume) for o in first)
    # no left-right flip: the blob right of centre stays right of centre (compared
    # by mean intensity of each half, which the added noise does not bias)
    for out in first:
        assert float(out[0][x > 16].mean()) > float(out[0][x < 16].mean()) + 0.02
    assert torch.equal(train_augmentation(strength=0.0)(volume).round(), volume)
