"""Grad-CAM maps and their geometry: the preprocessed grid maps back onto the source slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from dicom_node.errors import ResultsError
from pipeline.heatmaps import (
    FindingLogits,
    cam_target_layer,
    conv_blocks,
    display_slices,
    grad_cam_maps,
    mean_map,
    occlusion_maps,
    onto_grid,
    peak_world,
    saliency_maps,
    to_sitk,
)
from pipeline.model import ModelBundle
from pipeline.model.networks import MIRROR_AXIS, asymmetry_channel
from pipeline.model.scoring import EmbeddedQueries, ScoringSpec
from pipeline.preprocess import preprocess_with_affine
from pipeline.results.heatmap_geometry import reference_image, resample_to_slices, sort_slices
from pipeline.series import SequenceClass, select_series
from pipeline.volume import load_series


def _series(study: Path, sequence: SequenceClass) -> list[pydicom.Dataset]:
    chosen = select_series(study).get(sequence)
    assert chosen is not None
    return [pydicom.dcmread(str(p)) for p in chosen.files]


def test_preprocessed_grid_maps_back_onto_the_source_slices(
    abnormal_study: Path, tiny_bundle: ModelBundle
) -> None:
    """The preprocessed volume itself, taken as a 'map', lands on the original pixels."""
    datasets = _series(abnormal_study, SequenceClass.FLAIR)
    tensor, affine = preprocess_with_affine(load_series(datasets), tiny_bundle.preprocess_spec)
    assert tensor.shape == (1, *tiny_bundle.preprocess_spec.output_shape)
    source = sort_slices(datasets)
    back = resample_to_slices(to_sitk(tensor[0], affine), source)
    original = np.stack([ds.pixel_array for ds in source]).astype(np.float64)
    assert back.shape == original.shape
    inside = back != 0
    assert inside.mean() > 0.2
    correlation = np.corrcoef(back[inside], original[inside])[0, 1]
    # not 1: z-scoring, the clamp and two resamplings (0.80 with the Otsu head mask)
    assert correlation > 0.75, correlation
    # and a geometry 15 mm off (a wrong inverse) does not
    shifted = affine.copy()
    shifted[:3, 3] += (0.0, 15.0, 0.0)
    wrong = resample_to_slices(to_sitk(tensor[0], shifted), source)
    both = inside & (wrong != 0)
    wrong_correlation = np.corrcoef(wrong[both], original[both])[0, 1]
    assert wrong_correlation < correlation - 0.1, (wrong_correlation, correlation)


def test_peak_world_is_the_affine_image_of_the_argmax() -> None:
    heat = np.zeros((4, 5, 6), dtype=np.float32)
    heat[1, 2, 3] = 1.0
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (10.0, 20.0, 30.0)
    assert peak_world(heat, affine) == (12.0, 26.0, 42.0)
    assert peak_world(np.zeros_like(heat), affine) is None
    image = to_sitk(heat, affine)
    assert image.GetSize() == (4, 5, 6)
    assert image.TransformIndexToPhysicalPoint((1, 2, 3)) == pytest.approx((12.0, 26.0, 42.0))


def test_grad_cam_explains_the_finding_log_odds(tiny_bundle: ModelBundle) -> None:
    encoder = tiny_bundle.image_encoders["T2"]
    shape = tiny_bundle.preprocess_spec.output_shape
    blocks = conv_blocks(encoder)
    assert blocks and all(b.startswith("backbone.features.denseblock") for b in blocks)
    layer = cam_target_layer(encoder, torch.zeros(1, 1, *shape))
    assert layer in blocks and layer != blocks[-1]  # the last block is 1³ at 32³ input
    assert cam_target_layer(encoder, torch.zeros(1, 1, *shape), min_grid=1) == blocks[-1]
    volume = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    spec = tiny_bundle.manifest.scoring
    targets = ["abnormal", "haemorrhage"]
    logits = FindingLogits(encoder, tiny_bundle.queries, targets, spec)(volume[None])
    scores = tiny_bundle.score({"T2": tiny_bundle.encode_image("T2", volume)})
    for column, fid in enumerate(targets):  # the explained quantity is the score's log-odds
        score = float(torch.sigmoid(logits[0, column].detach().double()))
        assert score == pytest.approx(scores.findings[fid].per_sequence["T2"], abs=1e-4)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    maps = grad_cam_maps(encoder, volume, tiny_bundle.queries, targets, spec)
    assert set(maps) == set(targets)
    for heat in maps.values():
        assert heat.shape == shape
        assert np.isfinite(heat).all()
        assert heat.min() >= 0.0 and heat.max() <= 1.0 + 1e-6
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    # Grad-CAM keeps the positive evidence: of a margin and its negation, one has some
    swapped = EmbeddedQueries(
        normal=tiny_bundle.queries.findings["abnormal"],
        findings={
            "abnormal": tiny_bundle.queries.findings["abnormal"],
            "normal": tiny_bundle.queries.normal,
        },
    )
    plain = ScoringSpec(contrast="normal")
    pair = grad_cam_maps(encoder, volume, tiny_bundle.queries, ["abnormal"], plain)
    pair |= grad_cam_maps(encoder, volume, swapped, ["normal"], plain)
    assert any(heat.max() > 0 for heat in pair.values())
    outside = np.zeros(shape, dtype=bool)
    outside[: shape[0] // 2] = True
    masked = grad_cam_maps(encoder, volume, tiny_bundle.queries, ["abnormal"], spec, within=outside)
    assert not masked["abnormal"][~outside].any()
    with pytest.raises(ResultsError):
        grad_cam_maps(encoder, torch.zeros(2, 1, *shape), tiny_bundle.queries, targets, spec)
    with pytest.raises(ResultsError):
        FindingLogits(encoder, tiny_bundle.queries, ["no_such_finding"], spec)


def test_display_slices_keep_one_high_b_image_per_position(abnormal_study: Path) -> None:
    datasets = _series(abnormal_study, SequenceClass.DWI)
    chosen = display_slices(datasets)
    positions = {tuple(float(v) for v in ds.ImagePositionPatient) for ds in chosen}
    assert len(positions) == len(chosen) < len(datasets)
    assert len(sort_slices(chosen)) == len(chosen)
    reference_image(chosen)  # a consistent slice geometry
    flair = _series(abnormal_study, SequenceClass.FLAIR)
    assert len(display_slices(flair)) == len(flair)


class _RegionEncoder(torch.nn.Module):
    """A toy encoder whose embedding depends only on the mean of one box of the volume."""

    def __init__(self, box: tuple[slice, slice, slice], embed_dim: int) -> None:
        super().__init__()
        self.box = box
        self.proj = torch.nn.Linear(1, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, self.box[0], self.box[1], self.box[2]].mean(dim=(1, 2, 3, 4))
        out: torch.Tensor = self.proj(region[:, None]) + 0.1
        return out


def test_gradient_input_maps_point_at_the_evidence(tiny_bundle: ModelBundle) -> None:
    """The map's maximum lies where the model looks, whatever the rest of the volume holds."""
    shape = tiny_bundle.preprocess_spec.output_shape
    embed_dim = int(tiny_bundle.queries.normal.shape[1])
    box = (slice(20, 26), slice(4, 10), slice(12, 18))
    encoder = _RegionEncoder(box, embed_dim)
    volume = torch.rand(1, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    volume[0, 2:8, 20:28, 2:8] = 5.0  # a bright distractor the encoder ignores
    spec = tiny_bundle.manifest.scoring
    maps = saliency_maps("gradient_input", encoder, volume, tiny_bundle.queries, ["abnormal"], spec)
    other = saliency_maps(
        "gradient_input", encoder, volume, tiny_bundle.queries, ["haemorrhage"], spec
    )
    for heat in (maps["abnormal"], other["haemorrhage"]):
        assert heat.shape == shape and heat.min() >= 0.0 and heat.max() <= 1.0 + 1e-6
    # one of a finding's log-odds and its complement has positive evidence in the box
    best = max((maps["abnormal"], other["haemorrhage"]), key=lambda h: float(h.max()))
    peak = np.unravel_index(int(np.argmax(best)), shape)
    assert all(b.start - 2 <= p < b.stop + 2 for p, b in zip(peak, box, strict=True)), peak
    assert best[2:8, 20:28, 2:8].max() < 0.05  # nothing on the distractor
    with pytest.raises(ResultsError):
        saliency_maps("no_such_method", encoder, volume, tiny_bundle.queries, ["abnormal"], spec)


class _BoxFinding(torch.nn.Module):
    """A toy encoder: the brighter one box of the volume (``dark``: the darker), the
    closer to a finding's query."""

    toward: torch.Tensor
    away: torch.Tensor

    def __init__(
        self,
        box: tuple[slice, slice, slice],
        toward: torch.Tensor,
        away: torch.Tensor,
        dark: bool = False,
    ) -> None:
        super().__init__()
        self.box = box
        self.sign, self.threshold = (-1.0, 0.5) if dark else (1.0, 1.0)
        self.register_buffer("toward", toward)
        self.register_buffer("away", away)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, self.box[0], self.box[1], self.box[2]].mean(dim=(1, 2, 3, 4))
        weight = torch.sigmoid(4.0 * (self.sign * region - self.threshold))[:, None]
        out: torch.Tensor = weight * self.toward + (1.0 - weight) * self.away
        return out


def test_gradient_input_maps_find_a_dark_lesion(tiny_bundle: ModelBundle) -> None:
    """A finding that rises as tissue darkens (blood on T2 or DWI) is drawn where the
    tissue is dark, though dark voxels are close to the clamp floor (air)."""
    shape = tiny_bundle.preprocess_spec.output_shape
    queries = tiny_bundle.queries
    box = (slice(10, 16), slice(20, 26), slice(8, 14))
    toward, away = queries.findings["haemorrhage"][0], queries.normal[0]
    encoder = _BoxFinding(box, toward, away, dark=True)
    volume = 0.3 * torch.randn(1, *shape, generator=torch.Generator().manual_seed(2))
    volume[0, box[0], box[1], box[2]] = -0.9  # dark: 0.1 above the floor of -1
    volume[0, -8:-2, 2:8, -8:-2] = 4.0  # a bright distractor the encoder ignores
    spec = tiny_bundle.manifest.scoring
    heat = saliency_maps("gradient_input", encoder, volume, queries, ["haemorrhage"], spec)
    peak = np.unravel_index(int(np.argmax(heat["haemorrhage"])), shape)
    assert float(heat["haemorrhage"].max()) == pytest.approx(1.0)
    assert all(b.start - 2 <= p < b.stop + 2 for p, b in zip(peak, box, strict=True)), peak
    assert heat["haemorrhage"][-8:-2, 2:8, -8:-2].max() < 0.05


class _MirrorReader(torch.nn.Module):
    """A toy asymmetry encoder that reads a dark lesion from the *bright* difference on
    the healthy side: only the asymmetry channel, only in the box mirroring the lesion."""

    asymmetry = True
    toward: torch.Tensor
    away: torch.Tensor

    def __init__(
        self, healthy: tuple[slice, slice, slice], toward: torch.Tensor, away: torch.Tensor
    ) -> None:
        super().__init__()
        self.healthy = healthy
        self.register_buffer("toward", toward)
        self.register_buffer("away", away)

    def backbone_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, asymmetry_channel(x)], dim=1)

    def from_channels(self, channels: torch.Tensor) -> torch.Tensor:
        b = self.healthy
        difference = channels[:, 1, b[0], b[1], b[2]].mean(dim=(1, 2, 3))
        weight = torch.sigmoid(4.0 * (difference - 1.0))[:, None]
        out: torch.Tensor = weight * self.toward + (1.0 - weight) * self.away
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_channels(self.backbone_input(x))


def test_asymmetry_evidence_is_drawn_on_the_lesion_not_its_mirror(
    tiny_bundle: ModelBundle,
) -> None:
    """The asymmetry channel's evidence belongs to a pair of mirrored voxels; the map
    gives it to the side that departs from the head's mean (the lesion), and the
    healthy side, where this encoder actually reads the difference, stays dark."""
    shape = tiny_bundle.preprocess_spec.output_shape
    queries = tiny_bundle.queries
    lesion = (slice(6, 12), slice(20, 26), slice(8, 14))
    n = shape[MIRROR_AXIS - 2]
    healthy = (slice(n - lesion[0].stop, n - lesion[0].start), lesion[1], lesion[2])
    encoder = _MirrorReader(healthy, queries.findings["haemorrhage"][0], queries.normal[0])
    volume = 0.8 + 0.1 * torch.randn(1, *shape, generator=torch.Generator().manual_seed(3))
    volume[0, lesion[0], lesion[1], lesion[2]] = -2.0  # dark blood on one side only
    spec = tiny_bundle.manifest.scoring
    heat = saliency_maps("gradient_input", encoder, volume, queries, ["haemorrhage"], spec)
    peak = np.unravel_index(int(np.argmax(heat["haemorrhage"])), shape)
    assert all(b.start - 2 <= p < b.stop + 2 for p, b in zip(peak, lesion, strict=True)), peak
    # gradient x input through the mirror would light the healthy side at 0.8 / 2.0
    assert heat["haemorrhage"][healthy].max() < 0.05


def test_occlusion_maps_point_at_the_evidence(tiny_bundle: ModelBundle) -> None:
    """Occluding the box the model looks at lowers the finding's log-odds; elsewhere nothing."""
    shape = tiny_bundle.preprocess_spec.output_shape
    queries = tiny_bundle.queries
    box = (slice(20, 26), slice(4, 10), slice(12, 18))
    encoder = _BoxFinding(box, queries.findings["hydrocephalus"].mean(0), queries.normal.mean(0))
    volume = torch.rand(1, *shape, generator=torch.Generator().manual_seed(2)) * 0.5
    volume[0, box[0], box[1], box[2]] = 2.0  # the evidence
    volume[0, 2:8, 20:28, 2:8] = 5.0  # a bright distractor the encoder ignores
    spec = tiny_bundle.manifest.scoring
    maps = occlusion_maps(encoder, volume, queries, ["hydrocephalus"], spec, mask_size=6)
    heat = maps["hydrocephalus"]
    assert heat.shape == shape and heat.min() >= 0.0 and abs(heat.max() - 1.0) < 1e-6
    peak = np.unravel_index(int(np.argmax(heat)), shape)
    assert all(b.start - 3 <= p < b.stop + 3 for p, b in zip(peak, box, strict=True)), peak
    assert heat[2:8, 20:28, 2:8].max() == 0.0  # nothing on the distractor
    # Through saliency_maps, restricted to a region far from the box: no evidence at all.
    within = np.zeros(shape, dtype=bool)
    within[:8] = True  # boxes (12 voxels) centred here end before the evidence
    outside = saliency_maps(
        "occlusion", encoder, volume, queries, ["hydrocephalus"], spec, within=within
    )
    assert outside["hydrocephalus"].max() == 0.0


def test_a_map_moves_between_grids_through_world_coordinates() -> None:
    """Two sequences' grids differ (each is centred on the head as its series shows it):
    a map's peak lands on the voxel of the other grid at the same patient position."""
    shape = (16, 16, 16)
    grid_a = np.diag([2.0, 2.0, 2.0, 1.0])
    grid_b = grid_a.copy()
    grid_b[:3, 3] = [4.0, -6.0, 2.0]  # 2, -3 and 1 voxels further along each axis
    heat = np.zeros(shape, dtype=np.float32)
    heat[8, 5, 9] = 1.0
    moved = onto_grid(heat, grid_a, shape, grid_b)
    assert moved.shape == shape
    assert np.unravel_index(int(np.argmax(moved)), shape) == (6, 8, 8)
    assert peak_world(moved, grid_b) == pytest.approx(peak_world(heat, grid_a))
    assert moved[0].max() == 0.0  # outside the first grid: no evidence, not a copy


def test_the_mean_map_peaks_where_the_sequences_agree() -> None:
    """One sequence's strongest evidence beside the lesion (a tumour's oedema on FLAIR)
    loses to the place every sequence points at."""
    flair = np.zeros((8, 8, 8), dtype=np.float32)
    t1c = np.zeros_like(flair)
    flair[1, 1, 1], flair[4, 4, 4] = 1.0, 0.7
    t1c[6, 6, 6], t1c[4, 4, 4] = 1.0, 0.8
    mean = mean_map([flair, t1c])
    assert np.unravel_index(int(np.argmax(mean)), mean.shape) == (4, 4, 4)
    assert float(mean.max()) == pytest.approx(1.0)
    within = np.ones_like(flair, dtype=bool)
    within[4] = False
    assert float(mean_map([flair, t1c], within)[4].max()) == 0.0
    with pytest.raises(ResultsError, match="no maps"):
        mean_map([])
