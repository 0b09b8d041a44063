"""Montage of synthetic studies (every series, lesions outlined): ``docs/synthetic-montage.png``.

Run ``python -m training.synth.montage --out docs/synthetic-montage.png``.
"""

from __future__ import annotations

import io
from pathlib import Path

import click
import numpy as np
from numpy.typing import NDArray

from training.synth.geometry import resample_mask
from training.synth.study import SyntheticSeries, SyntheticStudy, generate_study

#: (seed, site, forced findings) of the studies shown.
DEFAULT_CASES: tuple[tuple[int, str, dict[str, bool]], ...] = (
    (11, "siemens_a", {"acute_infarct": True}),
    (12, "ge_b", {"tumour": True}),
    (13, "philips_c", {"meningioma": True}),
    (15, "siemens_a", {"haemorrhage": True}),
    (16, "ge_b", {"demyelination": True}),
    (14, "philips_c", {"hydrocephalus": True}),
    (17, "siemens_a", {}),
)


def series_slice(
    study: SyntheticStudy, series: SyntheticSeries
) -> tuple[NDArray[np.uint16], NDArray[np.float32] | None, str]:
    """The most lesion-bearing slice of a series (middle slice when none), its lesion
    mask fraction and a title."""
    b_value = max(series.b_values) if series.b_values else None
    pixels = series.pixels(b_value)
    geom = series.geometry
    lesion = np.zeros(pixels.shape, np.float32)
    for mask in study.masks.values():
        lesion = np.maximum(lesion, resample_mask(mask.array, mask.affine_lps, geom))
    k = int(np.argmax(lesion.sum(axis=(1, 2)))) if lesion.any() else pixels.shape[0] // 2
    title = f"{series.sequence}: {series.description}"[:34]
    if b_value:
        title += f" b{int(b_value)}"
    return pixels[k], (lesion[k] if lesion[k].any() else None), title


def make_montage(
    out: Path, cases: tuple[tuple[int, str, dict[str, bool]], ...] = DEFAULT_CASES
) -> None:
    """Render the cases (one row per study, one column per series) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = [generate_study(seed, site, findings=f) for seed, site, f in cases]
    rows = [[s for s in st.series if s.role not in {"phase"}] for st in studies]
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(studies),
        ncols,
        figsize=(1.6 * ncols, 1.75 * len(studies)),
        gridspec_kw={"wspace": 0.02, "hspace": 0.16},
    )
    fig.subplots_adjust(left=0.005, right=0.995, top=0.975, bottom=0.005)
    fig.patch.set_facecolor("black")
    for r, (study, series_list) in enumerate(zip(studies, rows, strict=True)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(series_list):
                continue
            img, lesion, title = series_slice(study, series_list[c])
            lo, hi = np.percentile(img, [0.5, 99.5])
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="bilinear")
            if lesion is not None:
                ax.contour(lesion, levels=[0.5], colors="red", linewidths=0.5)
            ax.set_title(title, color="white", fontsize=5, pad=2)
        present = ", ".join(f for f, v in study.findings.items() if v) or "normal"
        axes[r, 0].text(
            0.02,
            0.02,
            f"{study.site}\n{present}",
            color="yellow",
            fontsize=5,
            va="bottom",
            transform=axes[r, 0].transAxes,
        )
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=115, facecolor="black", format="png")
    plt.close(fig)
    # an adaptive 256-colour palette keeps the PNG small (grey levels + red outlines)
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as picture:
        picture.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            out, optimize=True
        )


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/synthetic-montage.png"))
def main(out: Path) -> None:
    """Write the montage PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    make_montage(out)


if __name__ == "__main__":
    main()
