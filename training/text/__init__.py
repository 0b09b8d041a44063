"""The report encoder (NeuroBERT-style): tokenizer, RoBERTa, MLM + section matching."""

from __future__ import annotations

from pipeline.model.text_encoder import ReportEncoder, mean_pool
from training.text.train import (
    ReportEncoderTrainConfig,
    load_report_encoder,
    train_report_encoder,
)

__all__ = [
    "ReportEncoder",
    "ReportEncoderTrainConfig",
    "load_report_encoder",
    "mean_pool",
    "train_report_encoder",
]
