"""``dicom-node inspect PATH [--json]``: what the node sees in a study folder.

For each series: UID, number, description, detected class with its reason,
whether it was selected (and for which class), and the loaded volume's shape,
spacing and orientation (or why it cannot be loaded as one volume).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from dicom_node.errors import DicomNodeError
from pipeline.series import SequenceClass, select_series
from pipeline.series.select import SeriesEntry, StudySelection
from pipeline.volume import load_series

logger = logging.getLogger(__name__)


def _volume_info(entry: SeriesEntry, load: bool, selection: StudySelection) -> dict[str, Any]:
    if not load:
        return {}
    if entry.classification.sequence in (SequenceClass.LOCALIZER, SequenceClass.OTHER):
        return {"volume": None, "volume_note": "not loaded (not used by the models)"}
    chosen_dwi = selection.get(SequenceClass.DWI)
    is_chosen_dwi = chosen_dwi is not None and chosen_dwi.series_uid == entry.series_uid
    if is_chosen_dwi or (
        entry.classification.sequence is SequenceClass.DWI and len(entry.header.b_values) > 1
    ):
        from pipeline.series.dwi import diffusion_volumes, study_diffusion

        try:
            dwi = study_diffusion(selection) if is_chosen_dwi else None
            if dwi is None:
                dwi = diffusion_volumes([*entry.sources])
        except DicomNodeError as exc:
            return {"volume": None, "volume_error": str(exc)}
        volume = dwi.trace
        note = dwi.explanation
    else:
        try:
            volume = load_series(entry.sources)
        except DicomNodeError as exc:
            return {"volume": None, "volume_error": str(exc)}
        note = ""
    info: dict[str, Any] = {
        "volume": {
            "shape": list(volume.shape),
            "spacing": [round(v, 4) for v in volume.spacing],
            "orientation": volume.orientation,
            "origin": [round(v, 3) for v in volume.origin],
        }
    }
    if note:
        info["volume_note"] = note
    return info


def inspection_report(path: Path, load: bool = True) -> dict[str, Any]:
    """The inspection of a study folder as a JSON-friendly dict."""
    selection: StudySelection = select_series(path)
    rows = []
    for entry in selection.series:
        header = entry.header
        row: dict[str, Any] = {
            "series_uid": header.series_uid,
            "series_number": header.series_number,
            "description": header.series_description,
            "class": entry.classification.sequence.value,
            "reason": entry.classification.reason,
            "selected_for": [s.value for s in selection.is_selected(header.series_uid)],
            "images": header.n_frames,
        }
        row.update(_volume_info(entry, load, selection))
        rows.append(row)
    chosen = {
        seq.value: {"series_uid": sel.series_uid, "explanation": sel.explanation}
        for seq, sel in selection.chosen.items()
    }
    return {"study_uid": selection.study_uid, "series": rows, "chosen": chosen}


def _text_report(report: dict[str, Any]) -> str:
    lines = [f"Study {report['study_uid']}"]
    for row in report["series"]:
        selected = ",".join(row["selected_for"]) or "-"
        lines.append(
            f"  #{row['series_number']!s:>4} {row['class']:<9} selected:{selected:<6} "
            f"{row['description']!r} ({row['images']} images)"
        )
        lines.append(f"        uid: {row['series_uid']}")
        lines.append(f"        why: {row['reason']}")
        volume = row.get("volume")
        if volume:
            lines.append(
                f"        volume: shape {tuple(volume['shape'])} spacing "
                f"{tuple(volume['spacing'])} mm orientation {volume['orientation']}"
            )
        if row.get("volume_error"):
            lines.append(f"        volume: cannot load: {row['volume_error']}")
        if row.get("volume_note"):
            lines.append(f"        note: {row['volume_note']}")
    lines.append("Chosen:")
    for seq, sel in report["chosen"].items():
        lines.append(f"  {seq:<5} {sel['explanation']}")
    return "\n".join(lines)


@click.command("inspect")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--no-load", is_flag=True, help="Classify only; do not load the volumes.")
def inspect_cmd(path: Path, as_json: bool, no_load: bool) -> None:
    """Show each series of the study at PATH: class, reason, selection, volume geometry."""
    try:
        report = inspection_report(path, load=not no_load)
    except DicomNodeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_text_report(report))
