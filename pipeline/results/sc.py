"""Heatmap secondary captures: source slices with the saliency map blended in.

One series per finding (or per sequence), one RGB 8-bit Secondary Capture
instance per slice (highdicom :class:`~highdicom.sc.SCImage`), slices chosen
around the map's peak. Each image shows the source slice windowed to grey with
the map as a colour overlay (transparent where the map is low, so the anatomy
stays visible), and below it a caption band burned into the pixels: finding,
score, call, model and version, source slice, and "NOT FOR DIAGNOSTIC USE".

Attributes set for dciodvfy beyond highdicom's defaults: Burned In Annotation
``YES``, Body Part Examined, Source Image Sequence, Derivation Description,
Image Type ``DERIVED\\SECONDARY``. Laterality (type 2C) is left out: the brain is
not a paired body part. Patient Orientation is derived from the source's Image
Orientation (Patient); upsampling and the caption band keep row/column directions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import matplotlib
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from dicom_node.errors import ResultsError
from pipeline.results.model import ModelIdentity
from pipeline.results.sr import contributing_equipment

logger = logging.getLogger(__name__)

NOT_FOR_DIAGNOSTIC_USE = "AI RESULT - NOT FOR DIAGNOSTIC USE"
TARGET_SIZE = 512
"""Images are upsampled (integer factor) until their longer side reaches this."""
OVERLAY_FLOOR = 0.25
"""Map values (normalised to the volume's maximum) below this are not drawn."""
OVERLAY_MAX_ALPHA = 0.6
COLOUR_MAP = "jet"

_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))


@dataclass(frozen=True)
class Caption:
    """What a heatmap's burned-in caption says."""

    label: str
    score: float
    threshold: float
    present: bool
    sequence: str
    model_name: str
    model_version: str
    map_from: tuple[str, ...] = ()
    """The sequences whose maps were averaged, when more than ``sequence``'s own."""

    def lines(self, slice_index: int, slice_count: int) -> list[str]:
        call = "PRESENT" if self.present else "absent"
        averaged = f" | map: {'+'.join(self.map_from)}" if self.map_from else ""
        return [
            f"{self.label}: score {self.score:.3f} (threshold {self.threshold:.3f}) - {call}",
            f"{self.model_name} v{self.model_version} | {self.sequence} "
            f"slice {slice_index + 1}/{slice_count}{averaged}",
            NOT_FOR_DIAGNOSTIC_USE,
        ]


def select_slices(heatmap: npt.NDArray[np.floating], count: int) -> list[int]:
    """Indices of ``count`` consecutive slices centred on the slice holding the map's peak."""
    if heatmap.ndim != 3 or heatmap.shape[0] == 0:
        raise ResultsError(f"heatmap must have shape (slices, rows, columns), not {heatmap.shape}")
    if count < 1:
        raise ResultsError(f"slice count must be positive, not {count}")
    peak = int(np.argmax(heatmap.reshape(heatmap.shape[0], -1).max(axis=1)))
    n = heatmap.shape[0]
    count = min(count, n)
    start = min(max(peak - count // 2, 0), n - count)
    return list(range(start, start + count))


def patient_orientation(ds: Dataset) -> tuple[str, str]:
    """Patient Orientation (row, column directions) from Image Orientation (Patient).

    Each direction is named by its dominant axis only (``"L"``, ``"P"``, ``"F"``...):
    highdicom accepts single letters, and for an oblique slice the dominant one is
    what a viewer needs to label the image edges.
    """
    iop = [float(v) for v in ds.ImageOrientationPatient]

    def letter(vector: list[float]) -> str:
        axis = max(range(3), key=lambda i: abs(vector[i]))
        return _AXIS_LETTERS[axis][0 if vector[axis] > 0 else 1]

    return letter(iop[:3]), letter(iop[3:])


def grey_window(volume: npt.NDArray[np.floating]) -> tuple[float, float]:
    """A robust display window of a series (0.5th to 99.5th percentile)."""
    lo, hi = (float(v) for v in np.percentile(volume, [0.5, 99.5]))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def render(
    pixels: npt.NDArray[np.floating],
    heat: npt.NDArray[np.floating],
    window: tuple[float, float],
    lines: Sequence[str],
) -> npt.NDArray[np.uint8]:
    """The RGB image of one slice: grey anatomy, colour overlay, caption band below.

    Args:
        pixels: The source slice (rows, columns), stored values.
        heat: The map on that slice, normalised to [0, 1] over the volume.
        window: Grey display window (low, high) in stored values.
        lines: Caption lines; the last one is drawn in yellow.
    """
    lo, hi = window
    grey = np.clip((pixels.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    rgba = matplotlib.colormaps[COLOUR_MAP](np.clip(heat, 0.0, 1.0))
    alpha = OVERLAY_MAX_ALPHA * np.clip((heat - OVERLAY_FLOOR) / (1.0 - OVERLAY_FLOOR), 0.0, 1.0)
    blended = grey[..., None] * (1.0 - alpha[..., None]) + rgba[..., :3] * alpha[..., None]
    image = Image.fromarray(np.round(blended * 255).astype(np.uint8), mode="RGB")

    factor = max(1, math.ceil(TARGET_SIZE / max(image.size)))
    image = image.resize((image.width * factor, image.height * factor), Image.Resampling.BICUBIC)

    font_size = max(14, image.width // 28)
    line_height = int(font_size * 1.35)
    band = line_height * len(lines) + font_size
    canvas = Image.new("RGB", (image.width, image.height + band), (0, 0, 0))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    y = image.height + font_size // 2
    for i, line in enumerate(lines):
        colour = (255, 220, 0) if i == len(lines) - 1 else (255, 255, 255)
        draw.text((font_size // 2, y), line, fill=colour, font=font)
        y += line_height
    return np.asarray(canvas, dtype=np.uint8)


def build_heatmap_series(
    source: Sequence[Dataset],
    heatmap: npt.NDArray[np.floating],
    caption: Caption,
    model: ModelIdentity,
    *,
    series_number: int,
    series_instance_uid: str | None = None,
    slice_count: int = 5,
) -> list[hd.sc.SCImage]:
    """One heatmap series: ``slice_count`` SC instances around the map's peak.

    Args:
        source: The source slices, in the order of ``heatmap``'s first axis
            (:func:`pipeline.results.heatmap_geometry.sort_slices`).
        heatmap: The map on the source slices' grid, shape (slices, rows, columns).
        caption: What to burn into each image.
        model: The algorithm (manufacturer, Contributing Equipment).
        series_number: Series Number of the new series.
        series_instance_uid: UID of the new series (generated when omitted).
        slice_count: How many slices to capture.
    """
    sizes = {(int(ds.Rows), int(ds.Columns)) for ds in source}
    if len(sizes) != 1:
        raise ResultsError(f"source slices of one heatmap differ in Rows/Columns: {sorted(sizes)}")
    volume = np.stack([ds.pixel_array for ds in source]).astype(np.float32)
    if volume.shape != heatmap.shape:
        raise ResultsError(
            f"heatmap shape {heatmap.shape} does not match the source slices {volume.shape}"
        )
    heat = heatmap.astype(np.float32) - float(heatmap.min())
    peak = float(heat.max())
    heat = heat / peak if peak > 0 else heat
    window = grey_window(volume)
    series_uid = series_instance_uid or hd.UID()
    description = f"AI heatmap {caption.label} - NOT FOR DIAGNOSTIC USE"[:64]

    images = []
    for number, index in enumerate(select_slices(heat, slice_count), start=1):
        ref = source[index]
        rgb = render(volume[index], heat[index], window, caption.lines(index, len(source)))
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=ref,
            pixel_array=rgb,
            photometric_interpretation="RGB",
            bits_allocated=8,
            coordinate_system="PATIENT",
            series_instance_uid=series_uid,
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=number,
            manufacturer=model.manufacturer,
            patient_orientation=patient_orientation(ref),
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            contributing_equipment=[contributing_equipment(model)],
            series_description=description,
            manufacturer_model_name=model.name,
            software_versions=model.version,
        )
        _add_derivation(sc, ref, caption)
        images.append(sc)
    logger.info(
        "built %d heatmap captures of %s for study %s",
        len(images),
        caption.label,
        source[0].StudyInstanceUID,
    )
    return images


def _add_derivation(sc: Dataset, ref: Dataset, caption: Caption) -> None:
    """Derivation attributes dciodvfy and viewers expect on a derived capture."""
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "YES"
    sc.RecognizableVisualFeatures = "NO"
    sc.BodyPartExamined = str(ref.get("BodyPartExamined") or "HEAD")
    averaged = f" (the mean of the {', '.join(caption.map_from)} maps)" if caption.map_from else ""
    sc.DerivationDescription = (
        f"{caption.sequence} slice blended with the {caption.model_name} "
        f"{caption.model_version} saliency map for {caption.label}{averaged}; caption burned in"
    )[:1024]
    item = Dataset()
    item.ReferencedSOPClassUID = ref.SOPClassUID
    item.ReferencedSOPInstanceUID = ref.SOPInstanceUID
    frame_number = getattr(ref, "referenced_frame_number", None)
    if frame_number is not None:  # a frame of a multi-frame source (pipeline.heatmaps.frame_view)
        item.ReferencedFrameNumber = int(frame_number)
    purpose = hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    item.PurposeOfReferenceCodeSequence = [purpose]
    sc.SourceImageSequence = [item]
