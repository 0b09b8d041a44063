"""Image-encoder training under ``torchrun`` with two processes (Gloo on CPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.unit.learning.conftest import write_fake_cache
from training.data.cache import read_cache
from training.text import ReportEncoderTrainConfig, train_report_encoder

pytestmark = pytest.mark.slow


def test_two_process_ddp_training_writes_one_checkpoint(tmp_path: Path) -> None:
    cache = write_fake_cache(tmp_path / "cache", n=24)
    studies = read_cache(cache).split("train")
    train_report_encoder(
        [s.report for s in studies],
        tmp_path / "text",
        ReportEncoderTrainConfig(config="tiny", epochs=1, batch_size=8, threads=1),
    )
    launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    entry = shutil.which("dicom-node-train", path=str(Path(sys.executable).parent))
    if launcher is None or entry is None:
        pytest.skip("torchrun / dicom-node-train not installed next to the interpreter")
    out = tmp_path / "images"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            launcher,
            "--nproc-per-node",
            "2",
            "--master-port",
            str(free_port()),
            entry,
            "image-encoders",
            "--cache",
            str(cache),
            "--report-encoder",
            str(tmp_path / "text"),
            "--out",
            str(out),
            "--config",
            "tiny",
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--sequences",
            "T2",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((out / "T2" / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1.0, 2.0]
    assert (out / "T2" / "best.safetensors").is_file()
    # each rank prints its summary; both agree on the best validation loss
    summaries = [
        json.loads(chunk) for chunk in result.stdout.replace("}\n{", "}\x00{").split("\x00")
    ]
    assert len(summaries) == 2
    assert summaries[0]["T2"]["best_val_loss"] == pytest.approx(summaries[1]["T2"]["best_val_loss"])
