"""Training-time augmentation of preprocessed volumes (MONAI array transforms).

Only changes that keep the report true: small rotations, translations and
scaling, intensity scale/shift and noise. No left-right flips — reports name
the side of a lesion, and the report embedding carries it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from monai.transforms.compose import Compose
from monai.transforms.intensity.array import (
    RandGaussianNoise,
    RandScaleIntensity,
    RandShiftIntensity,
)
from monai.transforms.spatial.array import RandAffine
from torch import Tensor


def train_augmentation(seed: int = 0, strength: float = 1.0) -> Callable[[Tensor], Tensor]:
    """A random transform of a (1, D, H, W) volume; ``strength`` scales every range."""
    angle = math.radians(8.0) * strength
    compose = Compose(
        [
            RandAffine(
                prob=0.8,
                rotate_range=(angle, angle, angle),
                translate_range=(4 * strength,) * 3,
                scale_range=(0.06 * strength,) * 3,
                padding_mode="zeros",
                mode="bilinear",
            ),
            RandScaleIntensity(factors=0.1 * strength, prob=0.5),
            RandShiftIntensity(offsets=0.1 * strength, prob=0.5),
            RandGaussianNoise(prob=0.3, std=0.05 * strength),
        ]
    )
    compose.set_random_state(seed=seed)

    def apply(volume: Tensor) -> Tensor:
        out = compose(volume)
        return torch.as_tensor(out, dtype=torch.float32).contiguous()

    return apply
