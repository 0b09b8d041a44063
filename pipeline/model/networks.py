"""Per-sequence image encoders: a 3D CNN backbone and a projection head into text space.

ALIGN trains one CNN per MRI sequence to regress the study's report embedding.
Backbones are MONAI networks named by an allow-list (a bundle's manifest names a
class and its init arguments; no code or expressions are ever read from it):

* ``DenseNet121`` — :class:`monai.networks.nets.DenseNet121`, the ``base`` config
  (as ALIGN's and brat's released code);
* ``DenseNet`` — :class:`monai.networks.nets.DenseNet` with small growth rate and
  blocks, the light CPU ``small`` config.

Networks take ``spatial_dims`` / ``in_channels`` / ``out_channels`` like MONAI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.networks.nets.densenet import DenseNet, DenseNet121
from torch import Tensor, nn

from dicom_node.errors import BundleError

BACKBONES: dict[str, type[nn.Module]] = {
    "DenseNet121": DenseNet121,
    "DenseNet": DenseNet,
}


POOLINGS: tuple[str, ...] = ("avg", "max")
"""Global pooling choices of :class:`SequenceEncoder`."""


MIRROR_AXIS = 2
"""The left-right axis of a batch of preprocessed volumes (B, C, D0, D1, D2).

:func:`pipeline.preprocess.preprocess_with_affine` orients volumes ``LPS``
(``D0`` runs right to left) and centres the crop on the head
(:func:`pipeline.preprocess.head_centre`), so mirroring ``D0`` about the grid's
centre maps each hemisphere onto the other (to within a voxel and the head's tilt)."""


def asymmetry_channel(x: Tensor) -> Tensor:
    """``x`` minus its left-right mirror image (same shape): 0 where the two sides match."""
    return x - torch.flip(x, dims=[MIRROR_AXIS])


class SequenceEncoder(nn.Module):
    """3D CNN backbone -> feature vector -> MLP projection head -> embedding.

    Args:
        backbone: a key of :data:`BACKBONES`.
        backbone_args: the backbone's init arguments except ``spatial_dims``,
            ``in_channels`` and ``out_channels`` (set from this class's arguments).
        feature_dim: size of the backbone output (its ``out_channels``).
        embed_dim: size of the text embedding space.
        hidden_dim: width of the projection head's hidden layer.
        in_channels: image channels (1 for one MRI sequence).
        pooling: global pooling of the last feature map: ``"avg"`` (MONAI's
            default) or ``"max"``, which keeps a small focal lesion's response
            instead of averaging it away over the whole head.
        asymmetry: add a left-right asymmetry channel, ``x - mirror(x)``
            (:func:`asymmetry_channel`), to each input channel before the backbone.
            The brain is nearly symmetric and most lesions are not: the channel is
            about 0 over paired anatomy (scalp, fat, venous sinuses, ventricles) and
            carries a one-sided lesion at full contrast. Parameter-free, computed
            inside ``forward``, so inputs, preprocessing and saliency maps (which
            differentiate through it) are unchanged.
    """

    def __init__(
        self,
        backbone: str,
        backbone_args: Mapping[str, Any] | None = None,
        feature_dim: int = 256,
        embed_dim: int = 256,
        hidden_dim: int = 512,
        in_channels: int = 1,
        pooling: str = "avg",
        asymmetry: bool = False,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise BundleError(f"backbone {backbone!r} is not one of {sorted(BACKBONES)}")
        if pooling not in POOLINGS:
            raise BundleError(f"pooling {pooling!r} is not one of {sorted(POOLINGS)}")
        self.asymmetry = bool(asymmetry)
        self.backbone = BACKBONES[backbone](
            spatial_dims=3,
            in_channels=in_channels * (2 if self.asymmetry else 1),
            out_channels=feature_dim,
            **dict(backbone_args or {}),
        )
        if pooling == "max":
            # MONAI DenseNets end in class_layers = relu, pool, flatten, out
            head_layers = self.backbone.get_submodule("class_layers")
            head_layers.pool = nn.AdaptiveMaxPool3d(1)
        self.pooling = pooling
        self.head = nn.Sequential(
            nn.GELU(),
            nn.Linear(feature_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, embed_dim),
        )
        self.embed_dim = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        """Unnormalised embeddings (B, embed_dim) of volumes ``x`` (B, C, D, H, W)."""
        return self.from_channels(self.backbone_input(x))

    def backbone_input(self, x: Tensor) -> Tensor:
        """What the backbone sees: ``x``, then its asymmetry channels when they are on."""
        if self.asymmetry:
            return torch.cat([x, asymmetry_channel(x)], dim=1)
        return x

    def from_channels(self, channels: Tensor) -> Tensor:
        """Unnormalised embeddings of a :meth:`backbone_input` (saliency maps
        differentiate with respect to it, channel by channel)."""
        out: Tensor = self.head(self.backbone(channels))
        return out

    @torch.no_grad()
    def embed(self, x: Tensor) -> Tensor:
        """L2-normalised embeddings, no gradients."""
        return nn.functional.normalize(self.forward(x).float(), dim=-1)


NETWORK_CLASSES: dict[str, type[nn.Module]] = {"SequenceEncoder": SequenceEncoder}


def build_network(class_name: str, init_args: Mapping[str, Any]) -> nn.Module:
    """Instantiate an allow-listed network class with its stored init arguments.

    Raises:
        BundleError: unknown class, or arguments the class does not accept.
    """
    if class_name not in NETWORK_CLASSES:
        raise BundleError(f"network class {class_name!r} is not one of {sorted(NETWORK_CLASSES)}")
    try:
        return NETWORK_CLASSES[class_name](**dict(init_args))
    except TypeError as exc:
        raise BundleError(f"init_args {dict(init_args)!r} do not fit {class_name}: {exc}") from exc


SMALL_IMAGE_ARGS: dict[str, Any] = {
    "backbone": "DenseNet",
    "backbone_args": {
        "init_features": 16,
        "growth_rate": 8,
        "block_config": [2, 3, 3, 2],
        "bn_size": 2,
    },
    "feature_dim": 128,
    "hidden_dim": 256,
}
"""The ``small`` CPU image encoder (``embed_dim`` comes from the text encoder)."""

BASE_IMAGE_ARGS: dict[str, Any] = {
    "backbone": "DenseNet121",
    "backbone_args": {},
    "feature_dim": 1024,
    "hidden_dim": 1024,
}
"""The ``base`` image encoder: DenseNet-121 (ALIGN)."""

TINY_IMAGE_ARGS: dict[str, Any] = {
    "backbone": "DenseNet",
    "backbone_args": {
        "init_features": 8,
        "growth_rate": 4,
        "block_config": [1, 1, 1, 1],
        "bn_size": 2,
    },
    "feature_dim": 32,
    "hidden_dim": 64,
}
"""A ``tiny`` image encoder for tests and smoke runs (inputs of at least 32³)."""

IMAGE_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": TINY_IMAGE_ARGS,
    "small": SMALL_IMAGE_ARGS,
    "base": BASE_IMAGE_ARGS,
}


def image_encoder_args(
    config: str, embed_dim: int, pooling: str = "avg", asymmetry: bool = False
) -> dict[str, Any]:
    """Init arguments of :class:`SequenceEncoder` for a named config and embedding size.

    ``pooling`` and ``asymmetry`` are stored only when they are not the defaults, so
    manifests written before the options existed describe the same network.
    """
    if config not in IMAGE_CONFIGS:
        raise BundleError(f"image encoder config {config!r} is not one of {sorted(IMAGE_CONFIGS)}")
    args = {k: (dict(v) if isinstance(v, dict) else v) for k, v in IMAGE_CONFIGS[config].items()}
    args["embed_dim"] = embed_dim
    if pooling != "avg":
        args["pooling"] = pooling
    if asymmetry:
        args["asymmetry"] = True
    return args
