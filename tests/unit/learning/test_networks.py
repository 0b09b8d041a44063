from __future__ import annotations

import pytest
import torch

from dicom_node.errors import BundleError
from pipeline.model.networks import build_network, image_encoder_args


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
