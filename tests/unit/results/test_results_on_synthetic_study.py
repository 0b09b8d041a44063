"""Heatmap geometry and captures on a synthetic brain study (oblique sagittal FLAIR).

Uses the project's synthetic study generator when it is importable: a map made
from a finding's truth mask, in the mask's own rotated geometry, must come back
onto the source slices with its peak inside the lesion, and the captures drawn
on those slices must pass dciodvfy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from pipeline.results.heatmap_geometry import reference_image, resample_to_slices, sort_slices
from pipeline.results.model import AnalysisResult, FindingResult, StudyIdentity, TriageResult
from pipeline.results.writer import HeatmapInput, write_results
from tests.results_testdata import MODEL, series_reference
from tests.validators import dciodvfy_errors

synth = pytest.importorskip("training.synth.study")


def _mask_heatmap(mask) -> sitk.Image:
    """The smoothed truth mask as a SimpleITK image in the mask's patient geometry."""
    smooth = ndi.gaussian_filter(mask.array.astype(np.float32), 1.5)
    image = sitk.GetImageFromArray(np.transpose(smooth, (2, 1, 0)).copy())  # [i,j,k] -> (k,j,i)
    axes = mask.affine_lps[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    image.SetSpacing(tuple(float(v) for v in spacing))
    image.SetDirection(tuple(float(v) for v in (axes / spacing).ravel()))
    image.SetOrigin(tuple(float(v) for v in mask.affine_lps[:3, 3]))
    return image


@pytest.mark.slow
def test_mask_map_comes_back_inside_the_lesion(tmp_path: Path):
    study = synth.generate_study(
        5, findings={"meningioma": True}, sequences=["FLAIR"], size="small"
    )
    source = sort_slices(study.series_of("FLAIR")[0].datasets)
    mask = study.masks["meningioma"]
    heat = resample_to_slices(_mask_heatmap(mask), source)

    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    world = np.array(
        reference_image(source).TransformIndexToPhysicalPoint(
            (int(peak[2]), int(peak[1]), int(peak[0]))
        )
    )
    distance = np.min(np.linalg.norm(mask.world_points() - world, axis=1))
    assert distance <= 5.0  # the pointing game's 5 mm tolerance

    result = AnalysisResult(
        study=StudyIdentity.from_dataset(source[0]),
        model=MODEL,
        series=(series_reference("FLAIR", source),),
        findings=(
            FindingResult(
                finding_id="meningioma",
                display_name="Meningioma",
                score=0.78,
                threshold=0.41,
                present=True,
                sequences=("FLAIR",),
            ),
        ),
        triage=TriageResult(abnormal=True, score=0.88, threshold=0.35),
    )
    written = write_results(
        result, tmp_path, [HeatmapInput("meningioma", "FLAIR", source, heat)], slices_per_heatmap=3
    )
    assert len(written.heatmaps) == 3
    for obj in written.files:
        assert dciodvfy_errors(obj) == [], obj.name
