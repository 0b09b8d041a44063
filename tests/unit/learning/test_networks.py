from __future__ import annotations

import numpy as np
import pytest
import torch

from dicom_node.errors import BundleError
from pipeline.dicom_fixtures import make_mr_series
from pipeline.model.networks import (
    MIRROR_AXIS,
    asymmetry_channel,
    build_network,
    image_encoder_args,
)
from pipeline.preprocess import PreprocessSpec, preprocess
from pipeline.volume import Volume, load_series


def test_pooling_is_stored_only_when_not_the_default() -> None:
    assert "pooling" not in image_encoder_args("tiny", 16)
    assert image_encoder_args("tiny", 16, "max")["pooling"] == "max"


def test_max_pooling_network_takes_the_maximum_of_the_last_feature_map() -> None:
    torch.manual_seed(0)
    net = build_network("SequenceEncoder", image_encoder_args("tiny", 16, "max")).eval()
    x = torch.randn(2, 1, 32, 32, 32)
    backbone = net.get_submodule("backbone")
    with torch.no_grad():
        maps = torch.relu(backbone.get_submodule("features")(x))
        pooled = maps.amax(dim=(2, 3, 4))
        expected = backbone.get_submodule("class_layers").get_submodule("out")(pooled)
        assert torch.allclose(backbone(x), expected, atol=1e-5)
        assert net(x).shape == (2, 16)


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(BundleError, match="pooling 'median'"):
        build_network("SequenceEncoder", image_encoder_args("tiny", 16, "median"))


def _ball_with_left_marker(marker: bool) -> Volume:
    """An axial "head" (a ball) off the field of view's centre, with or without a
    brighter patch on its left (+i, patient L) side."""
    k, j, i = np.meshgrid(np.arange(40), np.arange(60), np.arange(60), indexing="ij")
    centre, radius = (34, 40, 22), 15
    ball = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 <= radius**2
    data = np.where(ball, 800, 0).astype(np.uint16)
    if marker:
        data[ball & (i > centre[0] + radius * 0.5)] = 1600
    return load_series(make_mr_series(data, (4.0, 4.0, 4.0), origin=(-120, -120, -80)))


SPEC = PreprocessSpec(
    spacing_mm=(4.0, 4.0, 4.0), crop_mm=(160.0, 160.0, 160.0), output_shape=(40, 40, 40)
)


def test_preprocessed_head_mirrors_onto_itself_and_a_one_sided_patch_is_signed() -> None:
    plain = torch.from_numpy(preprocess(_ball_with_left_marker(False), SPEC))[None]

    # the crop centres the head, so its mirror image lands on itself to within a voxel
    def mismatch(shift: int) -> float:
        mirrored = torch.roll(torch.flip(plain, [MIRROR_AXIS]), shift, dims=MIRROR_AXIS)
        return float((plain - mirrored).abs().mean())

    assert min(range(-4, 5), key=mismatch) in (-1, 0, 1)
    assert mismatch(0) < 0.5 * mismatch(4) and mismatch(0) < 0.5 * mismatch(-4)

    marked = torch.from_numpy(preprocess(_ball_with_left_marker(True), SPEC))[None]
    asym = asymmetry_channel(marked)[0, 0]
    # LPS: axis 0 runs towards the patient's left, so the patch sits at high indices
    # and the channel is + on its side, - on the mirrored (right) side
    left, right = asym[SPEC.output_shape[0] // 2 :], asym[: SPEC.output_shape[0] // 2]
    assert float(left.max()) > 1.0 and float(right.min()) < -1.0
    assert float(left.min()) > -0.5 and float(right.max()) < 0.5


def test_asymmetry_is_stored_only_when_on_and_doubles_the_backbone_input() -> None:
    assert "asymmetry" not in image_encoder_args("tiny", 16)
    args = image_encoder_args("tiny", 16, "max", asymmetry=True)
    assert args["asymmetry"] is True
    net = build_network("SequenceEncoder", args).eval()
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv3d))
    assert first_conv.in_channels == 2
    x = torch.randn(2, 1, 32, 32, 32, requires_grad=True)
    out = net(x)
    assert out.shape == (2, 16)
    # saliency differentiates through the channel back to the one-channel input
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_asymmetry_channel_flips_sign_with_the_mirror_image_and_vanishes_when_symmetric() -> None:
    x = torch.randn(1, 1, 8, 6, 4, generator=torch.Generator().manual_seed(0))
    mirrored = torch.flip(x, dims=[MIRROR_AXIS])
    assert torch.equal(asymmetry_channel(mirrored), -asymmetry_channel(x))
    # each side carries the other's value with the opposite sign
    assert torch.equal(torch.flip(asymmetry_channel(x), [MIRROR_AXIS]), -asymmetry_channel(x))
    assert float(asymmetry_channel(x + mirrored).abs().max()) == 0.0
    assert float(asymmetry_channel(x).abs().max()) > 0.0
