"""Fixtures of the learning-core tests: a tiny synthetic cache with reports and volumes.

Volumes are 32³ and carry simple, finding-specific patterns (a bright blob for
haemorrhage, enlarged dark centre for hydrocephalus), so that the tiny networks
can learn them in a few steps. Nothing is committed; everything is made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.preprocess import PreprocessSpec
from training.bundles import build_bundle
from training.data.cache import (
    STUDIES_FILE,
    CachedStudy,
    append_jsonl,
    read_cache,
    save_tensor,
    write_cache_meta,
)
from training.image import ImageTrainConfig, train_image_encoders
from training.text import ReportEncoderTrainConfig, train_report_encoder

SIZE = 32
FINDING_TEXT = {
    "haemorrhage": (
        "There is a large right frontal intraparenchymal haematoma.",
        "Acute intracerebral haemorrhage.",
    ),
    "hydrocephalus": (
        "The lateral and third ventricles are markedly dilated.",
        "Hydrocephalus.",
    ),
}
NORMAL_TEXT = (
    "The ventricles and sulci are normal. No restricted diffusion. No haemorrhage.",
    "Normal MRI brain.",
)


def _volume(rng: np.random.Generator, findings: list[str], contrast: float) -> np.ndarray:
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE] - (SIZE - 1) / 2
    r = np.sqrt(x**2 + y**2 + z**2)
    head = (r < SIZE * 0.45).astype(np.float32)
    ventricle = 3.0 + (5.0 if "hydrocephalus" in findings else 0.0)
    vol = head * contrast - (r < ventricle) * contrast
    if "haemorrhage" in findings:
        c = rng.integers(-6, 7, size=3)
        blob = np.sqrt((x - c[0] - 4) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) < 4
        vol = vol + 3.0 * blob
    vol = vol + rng.normal(0, 0.1, vol.shape)
    return vol[None].astype(np.float32)


def write_fake_cache(root: Path, n: int = 48, seed: int = 0) -> Path:
    """A prepared cache of ``n`` studies on sites A/B/C; site C is the test split."""
    rng = np.random.default_rng(seed)
    spec = PreprocessSpec(output_shape=(SIZE, SIZE, SIZE))
    write_cache_meta(
        root, {"preprocessing": spec.model_dump(mode="json"), "sequences": ["T2", "FLAIR"]}
    )
    rows = []
    for i in range(n):
        kind = i % 3
        findings = [] if kind == 0 else (["haemorrhage"] if kind == 1 else ["hydrocephalus"])
        site = "ABC"[(i // 3) % 3]
        split = "test" if site == "C" else ("val" if (i // 9) % 4 == 0 else "train")
        key = f"1.2.826.0.1.3680043.9.7{i:04d}"
        seqs = {}
        for seq, contrast in (("T2", 1.0), ("FLAIR", 0.6)):
            if seq == "FLAIR" and i % 5 == 4:
                continue  # some studies lack a sequence
            rel = f"tensors/{i:04d}/{seq}.npy"
            save_tensor(root / rel, _volume(rng, findings, contrast))
            seqs[seq] = rel
        text = FINDING_TEXT[findings[0]] if findings else NORMAL_TEXT
        labels = {f: int(f in findings) for f in ("haemorrhage", "hydrocephalus")}
        labels["abnormal"] = int(bool(findings))
        rows.append(
            CachedStudy(
                key=key,
                split=split,
                findings=text[0],
                impression=text[1],
                sequences=seqs,
                site=site,
                patient_key=f"p{i}",
                study_uid=key,
                labels=labels,
            ).to_json()
        )
    append_jsonl(root / STUDIES_FILE, rows)
    return root


@pytest.fixture(scope="session")
def fake_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_cache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def make_cache(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    def make(n: int = 48, seed: int = 0) -> Path:
        return write_fake_cache(tmp_path_factory.mktemp("cache"), n=n, seed=seed)

    return make


@dataclass
class Trained:
    cache: Path
    text: Path
    image: Path
    bundle: Path


@pytest.fixture(scope="session")
def trained(fake_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("trained")
    cache = read_cache(fake_cache)
    train_report_encoder(
        [s.report for s in cache.split("train")],
        root / "text",
        ReportEncoderTrainConfig(config="tiny", epochs=6, batch_size=8, learning_rate=2e-3),
        val=[s.report for s in cache.split("val")],
    )
    train_image_encoders(
        fake_cache,
        root / "text",
        root / "image",
        ImageTrainConfig(config="tiny", epochs=8, batch_size=4, learning_rate=3e-3),
    )
    build_bundle(fake_cache, root / "text", root / "image", root / "bundle", version="0.0.1")
    return Trained(fake_cache, root / "text", root / "image", root / "bundle")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine, OpenMP oversubscription made
    3D convolutions 30x slower (bench/model.py); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
