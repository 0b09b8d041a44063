"""A tiny model bundle trained in seconds, and small synthetic studies, for analysis tests.

The bundle's encoders learn simple finding-specific patterns on 32³ volumes
(the learning-core fixtures' recipe); its scores on real synthetic DICOM are
meaningless. Tests that use it check plumbing, conformance and consistency.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.preprocess import PreprocessSpec
from training.bundles import build_bundle
from training.data.cache import (
    STUDIES_FILE,
    CachedStudy,
    append_jsonl,
    save_tensor,
    write_cache_meta,
)
from training.image import ImageTrainConfig, train_image_encoders
from training.text import ReportEncoderTrainConfig, train_report_encoder

SIZE = 32
SIX_SEQUENCES = ("T1", "T2", "FLAIR", "DWI", "ADC", "T1C")
_TEXT = {
    "haemorrhage": ("There is a right frontal intraparenchymal haematoma.", "Haemorrhage."),
    "hydrocephalus": ("The lateral ventricles are markedly dilated.", "Hydrocephalus."),
    "": ("The ventricles and sulci are normal. No haemorrhage.", "Normal MRI brain."),
}


def _volume(rng: np.random.Generator, finding: str, size: int = SIZE) -> np.ndarray:
    z, y, x = np.mgrid[:size, :size, :size] - (size - 1) / 2
    r = np.sqrt(x**2 + y**2 + z**2) * (SIZE / size)
    vol = (r < SIZE * 0.45).astype(np.float32) - (r < (8.0 if finding == "hydrocephalus" else 3.0))
    if finding == "haemorrhage":
        c = rng.integers(-6, 7, size=3) * (size / SIZE)
        d = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) * (SIZE / size)
        vol = vol + 3.0 * (d < 4)
    return (vol + rng.normal(0, 0.1, vol.shape))[None].astype(np.float32)


def write_cache(
    root: Path, sequences: Sequence[str], n: int = 18, seed: int = 0, size: int = SIZE
) -> Path:
    """A prepared-format cache of ``n`` fake studies with every sequence (``size``³ volumes)."""
    rng = np.random.default_rng(seed)
    spec = PreprocessSpec(output_shape=(size, size, size))
    write_cache_meta(
        root, {"preprocessing": spec.model_dump(mode="json"), "sequences": list(sequences)}
    )
    rows = []
    for i in range(n):
        finding = ("", "haemorrhage", "hydrocephalus")[i % 3]
        split = "val" if i % 3 == (i // 3) % 3 else "train"
        seqs = {}
        for seq in sequences:
            rel = f"tensors/{i:04d}/{seq}.npy"
            save_tensor(root / rel, _volume(rng, finding, size))
            seqs[seq] = rel
        labels = {f: int(f == finding) for f in ("haemorrhage", "hydrocephalus")}
        labels["abnormal"] = int(bool(finding))
        key = f"1.2.826.0.1.3680043.9.8{i:04d}"
        rows.append(
            CachedStudy(
                key=key,
                split=split,
                findings=_TEXT[finding][0],
                impression=_TEXT[finding][1],
                sequences=seqs,
                site="A",
                patient_key=f"p{i}",
                study_uid=key,
                labels=labels,
            ).to_json()
        )
    append_jsonl(root / STUDIES_FILE, rows)
    return root


def train_tiny_bundle(
    root: Path,
    sequences: Sequence[str] = ("T2", "FLAIR", "DWI"),
    *,
    size: int = SIZE,
    image_config: str = "tiny",
    studies: int = 18,
) -> Path:
    """Train a tiny bundle for ``sequences`` under ``root``; returns the bundle folder.

    ``size`` and ``image_config`` make a cost proxy of a real bundle (e.g. 64 and
    ``small``, the demo model's plan): one epoch, meaningless scores, real shapes.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cache = write_cache(root / "cache", sequences, n=studies, size=size)
        from training.data.cache import read_cache

        studies = read_cache(cache)
        train_report_encoder(
            [s.report for s in studies.split("train")],
            root / "text",
            ReportEncoderTrainConfig(config="tiny", epochs=2, batch_size=8, learning_rate=2e-3),
            val=[s.report for s in studies.split("val")],
        )
        train_image_encoders(
            cache,
            root / "text",
            root / "image",
            ImageTrainConfig(config=image_config, epochs=1, batch_size=4, learning_rate=3e-3),
        )
        build_bundle(cache, root / "text", root / "image", root / "bundle", version="0.0.1")
    finally:
        torch.set_num_threads(threads)
    return root / "bundle"


# --- a node under test: `dicom-node serve` with its managed worker ---------------------------

AET = "NEURO"


@contextmanager
def serve_node(
    data_dir: Path,
    *,
    broker: str,
    bundle: Path,
    destination: str,
    quiet_period: float = 2.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``dicom-node serve`` (subprocess) with the managed worker, external broker, a bundle
    and one destination; yields (process, DICOM port). The log is ``data_dir/../serve.log``."""
    from tests.conftest import free_port
    from tests.orchestration_support import serve_subprocess

    port = free_port()
    args = [
        "--quiet-period",
        str(quiet_period),
        "--metrics-port",
        "0",
        "--broker",
        broker,
        "--bundle",
        str(bundle),
        "--device",
        "cpu",
        "--destination",
        destination,
    ]
    env = {**os.environ, **(extra_env or {})}
    with serve_subprocess(data_dir, port, AET, args, env) as (process, _log):
        yield process, port


def node_status(data_dir: Path) -> dict[str, dict[str, Any]]:
    """``dicom-node status --json`` by study UID (in-process)."""
    from click.testing import CliRunner

    from dicom_node.cli import main

    result = CliRunner().invoke(main, ["status", "--data-dir", str(data_dir), "--json"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    return {s["study_uid"]: s for s in json.loads(result.stdout)["studies"]}


def node_results(data_dir: Path, study_uid: str) -> dict[str, Any]:
    """``dicom-node results STUDY_UID --json`` (in-process)."""
    from click.testing import CliRunner

    from dicom_node.cli import main

    result = CliRunner().invoke(main, ["results", study_uid, "--data-dir", str(data_dir), "--json"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc
