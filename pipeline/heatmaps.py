"""3D saliency of the image-text similarity, mapped back onto the source slices.

Three methods, chosen by name (:data:`HEATMAP_METHODS`, :func:`saliency_maps`):

* ``"gradient_input"`` (default): the magnitude of gradient x input of the
  finding's log-odds, the input taken relative to the head's mean intensity,
  smoothed with a Gaussian (:data:`GRADIENT_SIGMA_VOXELS`). Full resolution, one
  backward pass per finding. For an encoder with a left-right asymmetry channel
  the channel's evidence is pooled over each mirrored pair of voxels and given to
  the side that departs from the head's mean (:func:`mirror_paired_evidence`).
  With the demo bundle 0.4.1 its peak fell within 5 mm of the lesion for 96 of
  120 synthetic positives (``bench/heatmaps.py``; ``docs/model.md``), Grad-CAM's
  for none of 24 with earlier bundles; 104 of 120 with 0.4.3, whose tumour map is
  the mean of all four sequences' maps (:func:`mean_map`, ``heatmap_sources``);
* ``"grad_cam"``: Grad-CAM, below;
* ``"occlusion"``: MONAI's occlusion sensitivity (:func:`occlusion_maps`):
  model-agnostic but ~70x slower, and no better on the demo bundle (7 of 24
  positives against 10 of 24 for gradient x input on the same studies).

For one sequence's preprocessed volume and one finding, the explained quantity is
the finding's log-odds, whose sigmoid is the score
(:func:`pipeline.model.scoring.finding_logits`, for either contrast of the
bundle's :class:`~pipeline.model.scoring.ScoringSpec`), e.g. with
``contrast="normal"``::

    target = (agg_pos(cos(v, p_i)) - agg_neg(cos(v, n_j))) / T

with ``v`` the sequence encoder's embedding, ``p_i`` the finding's query
sentences and ``n_j`` the normal references. Grad-CAM
(:class:`monai.visualize.GradCAM`) weights the activations of the encoder's deepest
convolutional block with a usable resolution (:data:`MIN_CAM_GRID`) by the
spatially averaged gradients of that target, keeps the positive part, upsamples
to the preprocessed grid and normalises to [0, 1].

The map lives on the preprocessed grid; :func:`to_sitk` gives it the grid's
world geometry (the affine of :func:`pipeline.preprocess.preprocess_with_affine`,
patient LPS), and :func:`pipeline.results.heatmap_geometry.resample_to_slices`
puts it onto the ORIGINAL slices of the source series.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from torch import Tensor, nn

from dicom_node.errors import DicomNodeError, ResultsError
from pipeline.model.networks import MIRROR_AXIS
from pipeline.model.scoring import (
    EmbeddedQueries,
    ScoringSpec,
    calibrate_logit,
    finding_logits,
)
from pipeline.series.headers import Frame

logger = logging.getLogger(__name__)


class FindingLogits(nn.Module):
    """An image encoder followed by the log-odds of several findings of a query bank.

    ``forward(x)`` returns (B, T): column ``t`` is ``targets[t]``'s log-odds, which
    MONAI's CAM classes treat as a class logit (``class_idx=t``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        queries: EmbeddedQueries,
        targets: Sequence[str],
        spec: ScoringSpec,
    ) -> None:
        super().__init__()
        unknown = [t for t in targets if t not in queries.findings]
        if unknown:
            raise ResultsError(f"heatmap targets {unknown} are not findings of the query bank")
        self.encoder = encoder
        self.queries = queries
        self.targets = list(targets)
        self.spec = spec

    def forward(self, x: Tensor) -> Tensor:
        """Log-odds (B, T) of the volumes ``x`` (B, 1, D, H, W), calibrated as the scores are."""
        v = nn.functional.normalize(self.encoder(x).float(), dim=-1)
        logits = finding_logits(v, self.queries, self.spec)
        calibrated = [
            calibrate_logit(logits[t], self.spec.calibration.get(t)) for t in self.targets
        ]
        return torch.stack(calibrated, dim=-1).float()


MIN_CAM_GRID = 6
"""Smallest feature grid (voxels per axis) Grad-CAM is computed on.

The last dense block of a DenseNet sees the volume at 1/32 of its size (3³ for a
120³ input, 1³ for 32³): a map that coarse cannot point at a lesion. Grad-CAM
therefore uses the deepest convolutional block whose output still has at least
this many voxels per axis (``denseblock3`` at 7³ for 120³ inputs)."""


def conv_blocks(encoder: nn.Module) -> list[str]:
    """Dotted names of the encoder's convolutional blocks, shallow to deep.

    For the bundle's :class:`~pipeline.model.networks.SequenceEncoder` (MONAI
    DenseNet backbones) these are the dense blocks ``backbone.features.denseblockN``
    (the in-place ReLU after ``norm5`` would clash with backward hooks). Other
    networks: their ``Conv3d`` layers.
    """
    features = getattr(getattr(encoder, "backbone", None), "features", None)
    if isinstance(features, nn.Module):
        blocks = [name for name, _ in features.named_children() if name.startswith("denseblock")]
        if blocks:
            return [f"backbone.features.{name}" for name in blocks]
    convs = [str(name) for name, m in encoder.named_modules() if isinstance(m, nn.Conv3d)]
    if not convs:
        raise ResultsError(f"encoder {type(encoder).__name__} has no Conv3d layer for Grad-CAM")
    return convs


def cam_target_layer(encoder: nn.Module, x: Tensor, min_grid: int = MIN_CAM_GRID) -> str:
    """The deepest block of :func:`conv_blocks` whose output grid is at least ``min_grid``³
    for input ``x`` (the shallowest block when none is)."""
    names = conv_blocks(encoder)
    modules = dict(encoder.named_modules())
    sizes: dict[str, tuple[int, ...]] = {}
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[2:]))
        )
        for name in names
    ]
    try:
        with torch.no_grad():
            encoder(x)
    finally:
        for hook in hooks:
            hook.remove()
    fitting = [name for name in names if sizes.get(name) and min(sizes[name]) >= min_grid]
    return fitting[-1] if fitting else names[0]


def grad_cam_maps(
    encoder: nn.Module,
    volume: Tensor | npt.NDArray[np.floating],
    queries: EmbeddedQueries,
    targets: Sequence[str],
    spec: ScoringSpec,
    device: torch.device | str = "cpu",
    within: npt.NDArray[np.bool_] | None = None,
) -> dict[str, npt.NDArray[np.float32]]:
    """Grad-CAM maps of each target finding's log-odds for one preprocessed volume.

    Args:
        encoder: the sequence's image encoder (left in eval mode, weights untouched).
        volume: (1, D, H, W) preprocessed volume (or (B=1, 1, D, H, W)).
        queries: the bundle's embedded query bank (``ModelBundle.queries``).
        targets: finding ids to explain, one map each.
        spec: the bundle's scoring spec.
        device: where to run.
        within: optional (D, H, W) mask (e.g. :func:`head_region`): the map is set
            to 0 outside it (saliency in the air around the head explains nothing).

    Returns:
        finding id -> map (D, H, W) on the preprocessed grid, in [0, 1].
    """
    from monai.visualize.class_activation_maps import GradCAM

    if not targets:
        return {}
    x = _one_volume(volume).to(device, torch.float32)
    model = FindingLogits(encoder, queries, targets, spec).eval()
    layer = cam_target_layer(encoder, x)
    cam = GradCAM(nn_module=model, target_layers=f"encoder.{layer}")
    maps: dict[str, npt.NDArray[np.float32]] = {}
    with torch.enable_grad():
        for index, target in enumerate(targets):
            out = cam(x, class_idx=index)
            array = np.nan_to_num(np.asarray(out.detach().cpu().numpy(), dtype=np.float32))
            heat = array[0, 0]
            if within is not None:
                heat = np.where(within, heat, 0.0).astype(np.float32)
            maps[target] = heat
    encoder.zero_grad(set_to_none=True)
    return maps


GRADIENT_SIGMA_VOXELS = 2.0
"""Gaussian smoothing (voxels of the preprocessed grid) of gradient x input maps."""

HEATMAP_METHODS: tuple[str, ...] = ("gradient_input", "grad_cam", "occlusion")
"""Saliency methods of :func:`saliency_maps`; the first is the default."""


def gradient_input_maps(
    encoder: nn.Module,
    volume: Tensor | npt.NDArray[np.floating],
    queries: EmbeddedQueries,
    targets: Sequence[str],
    spec: ScoringSpec,
    device: torch.device | str = "cpu",
    within: npt.NDArray[np.bool_] | None = None,
    sigma: float = GRADIENT_SIGMA_VOXELS,
) -> dict[str, npt.NDArray[np.float32]]:
    """Gradient x input maps of each target finding's log-odds for one preprocessed volume.

    The preprocessed volume is z-scored inside the head, so a voxel's value is its
    departure from the head's mean intensity, and gradient x value is the
    first-order change of the log-odds were the voxel average tissue. Its
    magnitude is smoothed and normalised to [0, 1]: a bright lesion the finding
    rises with counts, and so does a dark one (blood on T2 or DWI, a cavity),
    which a baseline of air (the clamp floor) missed: the positive part of
    gradient x (value - floor) is 0 wherever darker means more of the finding.

    For an encoder with a left-right asymmetry channel
    (:class:`~pipeline.model.networks.SequenceEncoder` ``asymmetry=True``) the
    gradient is taken with respect to the backbone's input, image and asymmetry
    channels apart (:func:`mirror_paired_evidence`), so that the two neither
    cancel nor spill the lesion's evidence onto its healthy mirror image.
    Arguments and result as :func:`grad_cam_maps`.
    """
    from scipy import ndimage

    if not targets:
        return {}
    x = _one_volume(volume).to(device, torch.float32)
    paired = bool(getattr(encoder, "asymmetry", False)) and hasattr(encoder, "from_channels")
    if paired:
        inputs = encoder.backbone_input(x).detach()  # type: ignore[operator]
        model = FindingLogits(_FromChannels(encoder), queries, targets, spec).eval()
    else:
        inputs = x
        model = FindingLogits(encoder, queries, targets, spec).eval()
    image = x[0].detach().cpu().numpy()
    maps: dict[str, npt.NDArray[np.float32]] = {}
    for index, target in enumerate(targets):
        xi = inputs.clone().requires_grad_(True)
        with torch.enable_grad():
            model(xi)[0, index].backward()
        grad = xi.grad
        if grad is None:  # pragma: no cover - backward always fills it
            raise ResultsError("no gradient reached the input")
        contribution = (grad[0] * inputs[0]).abs().detach().cpu().numpy()
        if paired:
            evidence = mirror_paired_evidence(contribution, image)
        else:
            evidence = contribution.sum(axis=0)
        heat = ndimage.gaussian_filter(evidence.astype(np.float32), sigma)
        maps[target] = _masked_unit_max(heat, within)
    encoder.zero_grad(set_to_none=True)
    return maps


class _FromChannels(nn.Module):
    """An asymmetry encoder run from its backbone input (image + asymmetry channels)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, channels: Tensor) -> Tensor:
        out: Tensor = self.encoder.from_channels(channels)  # type: ignore[operator]
        return out


def mirror_paired_evidence(
    contribution: npt.NDArray[np.floating], image: npt.NDArray[np.floating]
) -> npt.NDArray[np.float32]:
    """One evidence volume (D, H, W) from |gradient x input| of the image channels and
    the asymmetry channels of an asymmetry encoder's backbone input.

    An asymmetry channel's value at a voxel is that voxel minus its mirror image, so
    its evidence belongs to the *pair* of voxels, not to either: an encoder may well
    read a dark lesion from the bright difference on the healthy side (measured on
    the demo bundle: maps of haemorrhage drawn where the asymmetry gradient falls
    landed on the lesion's mirror image in about a third of studies). The pair's
    evidence is therefore pooled and given to the side that departs more from the
    head's mean intensity (the larger ``|z|`` of the preprocessed image), the lesion's
    side for a lesion brighter or darker than the tissue it replaces; the image
    channels' evidence stays where it is.

    Args:
        contribution: (2C, D, H, W) ``|gradient x input|``, the C image channels
            first, then their C asymmetry channels (``SequenceEncoder.backbone_input``).
        image: (C, D, H, W) the preprocessed image channels.
    """
    channels = image.shape[0]
    axis = MIRROR_AXIS - 2  # (B, C, D, H, W) -> (D, H, W)
    on_image = contribution[:channels].sum(axis=0)
    asymmetric = contribution[channels:].sum(axis=0)
    pooled = asymmetric + np.flip(asymmetric, axis=axis)
    departure = np.abs(image).sum(axis=0)
    lesion_side = departure >= np.flip(departure, axis=axis)
    return np.asarray(on_image + np.where(lesion_side, pooled, 0.0), dtype=np.float32)


OCCLUSION_MASK_VOXELS = 12
"""Edge (voxels of the preprocessed grid) of the box :func:`occlusion_maps` occludes."""
OCCLUSION_OVERLAP = 0.5
"""Overlap of neighbouring occlusion boxes (MONAI's ``overlap``)."""
OCCLUSION_NOISE_LOGIT = 1e-4
"""Falls of the log-odds below this are float round-off, not evidence (map stays 0)."""


def occlusion_maps(
    encoder: nn.Module,
    volume: Tensor | npt.NDArray[np.floating],
    queries: EmbeddedQueries,
    targets: Sequence[str],
    spec: ScoringSpec,
    device: torch.device | str = "cpu",
    within: npt.NDArray[np.bool_] | None = None,
    mask_size: int = OCCLUSION_MASK_VOXELS,
    overlap: float = OCCLUSION_OVERLAP,
    n_batch: int = 16,
) -> dict[str, npt.NDArray[np.float32]]:
    """Occlusion sensitivity of each target finding's log-odds for one preprocessed volume.

    :class:`monai.visualize.OcclusionSensitivity` slides a Gaussian-weighted box
    (``mask_size`` voxels, ``overlap``) over the bounding box of ``within`` (the
    whole grid without it) and records the log-odds with each box occluded; the
    map is how far the log-odds *fell* (positive part), normalised to [0, 1]. One
    sweep of forward passes serves every target. It needs no gradients and
    measures what the output actually depends on, at the box's resolution, but
    costs ~1,000 forward passes per sequence (10.6 s per study for the demo
    bundle on 2 CPU cores, against 0.15 s for gradient x input; ``bench/heatmaps.py``).
    Arguments and result as :func:`grad_cam_maps`.
    """
    import warnings

    from monai.visualize.occlusion_sensitivity import OcclusionSensitivity

    if not targets:
        return {}
    x = _one_volume(volume).to(device, torch.float32)
    model = FindingLogits(encoder, queries, targets, spec).eval()
    occlusion = OcclusionSensitivity(
        model, mask_size=mask_size, n_batch=n_batch, verbose=False, overlap=overlap, activate=False
    )
    shape = tuple(int(n) for n in x.shape[2:])
    box: list[int] = []  # MONAI's b_box: [min, max) per axis
    if within is not None and within.any():
        for axis in range(3):
            others = tuple(a for a in range(3) if a != axis)
            present = np.flatnonzero(within.any(axis=others))
            box += [int(present[0]), int(present[-1]) + 1]
    else:
        for size in shape:
            box += [0, size]
    with torch.no_grad(), warnings.catch_warnings():
        # MONAI 1.6 indexes tensors with lists, which torch 2.x deprecates.
        warnings.filterwarnings(
            "ignore", message="Using a non-tuple sequence", category=UserWarning
        )
        base = model(x)[0].cpu().numpy()
        occluded, _ = occlusion(x, b_box=box)
    drops = base[:, None, None, None] - occluded[0].detach().cpu().numpy()
    drops[drops < OCCLUSION_NOISE_LOGIT] = 0.0  # float32 round-off is not evidence
    maps: dict[str, npt.NDArray[np.float32]] = {}
    for index, target in enumerate(targets):
        heat = np.zeros(shape, dtype=np.float32)
        heat[box[0] : box[1], box[2] : box[3], box[4] : box[5]] = drops[index]
        maps[target] = _masked_unit_max(heat, within)
    return maps


def saliency_maps(
    method: str,
    encoder: nn.Module,
    volume: Tensor | npt.NDArray[np.floating],
    queries: EmbeddedQueries,
    targets: Sequence[str],
    spec: ScoringSpec,
    device: torch.device | str = "cpu",
    within: npt.NDArray[np.bool_] | None = None,
) -> dict[str, npt.NDArray[np.float32]]:
    """Maps of ``method`` (one of :data:`HEATMAP_METHODS`)."""
    if method == "gradient_input":
        return gradient_input_maps(encoder, volume, queries, targets, spec, device, within)
    if method == "grad_cam":
        return grad_cam_maps(encoder, volume, queries, targets, spec, device, within)
    if method == "occlusion":
        return occlusion_maps(encoder, volume, queries, targets, spec, device, within)
    raise ResultsError(f"heatmap method {method!r} is not one of {HEATMAP_METHODS}")


def _masked_unit_max(
    heat: npt.NDArray[np.floating], within: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.float32]:
    """``heat`` set to 0 outside ``within`` and scaled so its maximum is 1 (unless all 0)."""
    if within is not None:
        heat = np.where(within, heat, 0.0)
    top = float(heat.max())
    return np.asarray(heat / top if top > 0 else heat, dtype=np.float32)


def _one_volume(volume: Tensor | npt.NDArray[np.floating]) -> Tensor:
    x = volume if isinstance(volume, Tensor) else torch.from_numpy(np.asarray(volume))
    if x.ndim == 4:
        x = x.unsqueeze(0)
    if x.ndim != 5 or x.shape[0] != 1:
        raise ResultsError(f"a heatmap takes one volume (1, 1, D, H, W), got {tuple(x.shape)}")
    return x


def head_region(volume: npt.NDArray[np.floating], clamp_low: float) -> npt.NDArray[np.bool_]:
    """Voxels of a preprocessed (1, D, H, W) volume above the clamp floor: the head.

    The preprocessing z-scores inside the head and clamps to ``[clamp_low, ...]``;
    air ends at the floor.
    """
    region: npt.NDArray[np.bool_] = np.asarray(volume)[0] > clamp_low + 1e-3
    return region


def to_sitk(heatmap: npt.NDArray[np.floating], affine_lps: npt.NDArray[np.float64]) -> sitk.Image:
    """A map on the preprocessed grid (D0, D1, D2) as an image with that grid's geometry.

    Args:
        heatmap: the map, indexed like the preprocessed array's spatial axes.
        affine_lps: voxel (d0, d1, d2, 1) -> patient LPS mm, from
            :func:`pipeline.preprocess.preprocess_with_affine`.
    """
    if heatmap.ndim != 3:
        raise ResultsError(f"heatmap must be 3D, got shape {heatmap.shape}")
    axes = np.asarray(affine_lps, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    if np.any(spacing <= 0):
        raise ResultsError(f"heatmap grid has a zero spacing: {spacing.tolist()}")
    # SimpleITK arrays are (k, j, i); the grid's axis 0 is ITK's i.
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(heatmap, (2, 1, 0))))
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetOrigin(tuple(float(v) for v in affine_lps[:3, 3]))
    image.SetDirection(tuple(float(v) for v in (axes / spacing).ravel()))
    cast: sitk.Image = sitk.Cast(image, sitk.sitkFloat32)
    return cast


def onto_grid(
    heatmap: npt.NDArray[np.floating],
    affine_lps: npt.NDArray[np.float64],
    grid_shape: Sequence[int],
    grid_affine_lps: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """A map on one preprocessed grid resampled onto another (linear; 0 outside).

    Each sequence of a study is preprocessed on its own grid (centred on the head as
    that series shows it); both grids are in patient LPS, so the map moves through
    world coordinates, as it does onto the source slices.
    """
    reference = to_sitk(np.zeros(tuple(grid_shape), dtype=np.float32), grid_affine_lps)
    moved = sitk.Resample(
        to_sitk(heatmap, affine_lps),
        reference,
        sitk.Transform(),
        sitk.sitkLinear,
        0.0,
        sitk.sitkFloat32,
    )
    return np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(moved), (2, 1, 0)))


def mean_map(
    maps: Sequence[npt.NDArray[np.floating]], within: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float32]:
    """The mean of maps on one grid (each in [0, 1]), rescaled so its maximum is 1.

    Evidence that several sequences share outweighs a peak that one of them has
    alone: a tumour's map from FLAIR peaks on its oedema and from T1+C on its rim;
    their mean peaks on the tumour.
    """
    if not maps:
        raise ResultsError("no maps to average")
    stacked = np.stack([np.asarray(m, dtype=np.float32) for m in maps])
    return _masked_unit_max(stacked.mean(axis=0), within)


def display_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """The single-frame slices a map is drawn on: one image per slice position.

    A diffusion series holds several images per position (b-values); the b≈1000
    images are kept (those the model's ``DWI`` input comes from). Each frame of a
    multi-frame instance (Enhanced MR) becomes a single-frame view of it
    (:func:`frame_view`), so captures are drawn on Enhanced MR series too.

    Raises:
        ResultsError: nothing drawable (no slices, undecodable pixels, or several
            images per position that cannot be told apart).
    """
    from pipeline.series.dwi import pick_high_b, split_b_values
    from pipeline.volume import expand_sources, frame_position

    frames = expand_sources(list(datasets))
    positions = {frame_position(frame) for frame in frames}
    if len(positions) < len(frames):
        try:
            split = split_b_values(frames)
            frames = split.groups[pick_high_b(split)]
        except (KeyError, ValueError, DicomNodeError) as exc:
            raise ResultsError(f"cannot choose one image per slice position: {exc}") from exc
        unique: dict[tuple[float, float, float], Frame] = {}
        for frame in frames:
            unique.setdefault(frame_position(frame), frame)
        frames = list(unique.values())
    if not frames:
        raise ResultsError("no slices to draw the heatmap on")
    decoded: dict[int, npt.NDArray[Any]] = {}
    return [
        frame.dataset if frame.index is None else frame_view(frame, decoded) for frame in frames
    ]


#: Top-level attributes of a multi-frame instance that a single-frame view drops.
_MULTI_FRAME_ONLY = frozenset(
    {
        "PixelData",
        "NumberOfFrames",
        "PerFrameFunctionalGroupsSequence",
        "SharedFunctionalGroupsSequence",
        "DimensionIndexSequence",
        "DimensionOrganizationSequence",
        "FrameIncrementPointer",
    }
)
#: Per-frame geometry and pixel attributes a view takes from the functional groups.
_FRAME_ATTRIBUTES = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
)


def frame_view(frame: Frame, decoded: dict[int, npt.NDArray[Any]] | None = None) -> Dataset:
    """A single-frame dataset showing one frame of a multi-frame instance.

    It carries the instance's top-level attributes (patient, study, series, pixel
    description), the frame's geometry from the functional groups, the frame's
    stored pixel values (uncompressed) and, as the Python attribute
    ``referenced_frame_number``, the 1-based frame number that captures cite
    (SourceImageSequence > ReferencedFrameNumber). ``decoded`` caches decoded
    instances (id -> frames) across calls.

    Raises:
        ResultsError: the pixel data cannot be decoded, or the frame has no geometry.
    """
    source = frame.dataset
    index = 0 if frame.index is None else frame.index
    cache = {} if decoded is None else decoded
    array = cache.get(id(source))
    if array is None:
        try:
            array = np.asarray(source.pixel_array)
        except Exception as exc:
            raise ResultsError(
                f"cannot decode PixelData of SOPInstanceUID {source.get('SOPInstanceUID', '?')}: "
                f"{exc}"
            ) from exc
        cache[id(source)] = array
    pixels = array[index] if array.ndim == 3 else array
    view = Dataset()
    for element in source:
        if element.keyword not in _MULTI_FRAME_ONLY:
            view.add(copy.deepcopy(element))
    for keyword in _FRAME_ATTRIBUTES:
        value = frame.attribute(keyword)
        if value is not None:
            setattr(view, keyword, value)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if keyword not in view:
            raise ResultsError(
                f"frame {index + 1} of SOPInstanceUID {source.get('SOPInstanceUID', '?')} "
                f"has no {keyword}"
            )
    view.file_meta = FileMetaDataset()
    view.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    view.PixelData = np.ascontiguousarray(pixels).tobytes()
    view.referenced_frame_number = index + 1
    return view


def peak_world(
    heatmap: npt.NDArray[np.floating], affine_lps: npt.NDArray[np.float64]
) -> tuple[float, float, float] | None:
    """Patient LPS position (mm) of the map's maximum on the preprocessed grid.

    None for an empty map (Grad-CAM keeps only positive evidence: a map that is 0
    everywhere says the target has none, and has no peak).
    """
    if heatmap.size == 0 or not float(np.max(heatmap)) > 0.0:
        return None
    index = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    point = affine_lps @ np.asarray([*index, 1.0], dtype=np.float64)
    return (float(point[0]), float(point[1]), float(point[2]))
