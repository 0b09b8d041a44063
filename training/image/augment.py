"""Training-time augmentation of preprocessed volumes (MONAI array transforms).

Only changes that keep the report true: small rotations, translations and
scaling, intensity scale/shift, contrast (gamma) changes, a smooth bias field,
blur and noise. No left-right flips — reports name the side of a lesion, and the report
embedding carries it. The intensity changes stand in for the differences between
scanners and protocols (field strength, TR/TE, coil), which is what a model
trained at some hospitals meets at another.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from monai.transforms.compose import Compose
from monai.transforms.intensity.array import (
    RandAdjustContrast,
    RandBiasField,
    RandGaussianNoise,
    RandGaussianSmooth,
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
            RandAffine(  # the costly one (~70 ms per 64^3 volume on one core)
                prob=min(0.8, 0.4 * strength),
                rotate_range=(angle, angle, angle),
                translate_range=(4 * strength,) * 3,
                scale_range=(0.06 * strength,) * 3,
                padding_mode="zeros",
                mode="bilinear",
            ),
            RandAdjustContrast(
                prob=0.5, gamma=(1.0 / (1.0 + 0.5 * strength), 1.0 + 0.5 * strength)
            ),
            RandBiasField(prob=0.3, coeff_range=(0.0, 0.1 * strength)),
            RandScaleIntensity(factors=0.15 * strength, prob=0.5),
            RandShiftIntensity(offsets=0.15 * strength, prob=0.5),
            # sharpness and noise differ between scanners and reconstructions (a
            # 512-matrix 2D FLAIR against a 256-matrix one): blur some volumes, add
            # noise of up to 0.4 x strength z-units to others
            RandGaussianSmooth(
                sigma_x=(0.5 * strength, 2.0 * strength),
                sigma_y=(0.5 * strength, 2.0 * strength),
                sigma_z=(0.5 * strength, 2.0 * strength),
                prob=0.3 if strength > 0 else 0.0,
            ),
            RandGaussianNoise(prob=0.4, std=0.4 * strength),
        ]
    )
    compose.set_random_state(seed=seed)

    def apply(volume: Tensor) -> Tensor:
        out = compose(volume)
        return torch.as_tensor(out, dtype=torch.float32).contiguous()

    return apply
