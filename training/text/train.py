"""Training the report encoder: masked language modelling + section matching.

Each step takes a batch of reports and adds two losses (NeuroBERT recipe):

1. MLM — 15 % of the tokens of the whole report are masked (80 % ``<mask>``,
   10 % random, 10 % kept; :class:`transformers.DataCollatorForLanguageModeling`);
2. section matching — the findings and the impression of each report are
   encoded by the same (siamese) encoder, mean-pooled, and pulled together with
   a symmetric InfoNCE against the other reports of the batch
   (:func:`training.text.losses.info_nce`; identical impressions are not negatives).

Output folder: ``tokenizer.json``, ``text_config.json`` (RobertaConfig dict, max
length, config name), ``model.safetensors`` (the encoder without MLM head) and
``history.json``.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import (
    DataCollatorForLanguageModeling,
    RobertaConfig,
    RobertaForMaskedLM,
    get_linear_schedule_with_warmup,
)

from dicom_node.errors import TrainingError
from pipeline.model.text_encoder import ReportEncoder, load_tokenizer, mean_pool
from training.data.reports import ReportRecord
from training.text.configs import roberta_config
from training.text.losses import info_nce
from training.text.tokenizer import train_tokenizer

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "text_config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.json"


@dataclass
class ReportEncoderTrainConfig:
    """Hyper-parameters of :func:`train_report_encoder`."""

    config: str = "small"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    mlm_probability: float = 0.15
    section_weight: float = 1.0
    temperature: float = 0.05
    vocab_size: int | None = None
    """Tokenizer vocabulary size (default: the config's)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (tests, smoke runs)."""
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    """CPU intra-op threads (``torch.set_num_threads``), see ``ImageTrainConfig.threads``."""


@dataclass
class ReportEncoderTrainResult:
    """Where the encoder was written and how training went."""

    out_dir: Path
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def _batches(items: Sequence[ReportRecord], size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(len(items)))
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, len(order), size)]


@torch.no_grad()
def section_matching_accuracy(encoder: ReportEncoder, reports: Sequence[ReportRecord]) -> float:
    """Top-1 accuracy of retrieving each report's impression from its findings.

    A retrieval counts as correct when the retrieved impression's text equals the
    report's own (normal reports share identical impressions).
    """
    usable = [r for r in reports if r.findings and r.impression]
    if not usable:
        return float("nan")
    f = encoder.encode([r.findings for r in usable])
    i = encoder.encode([r.impression for r in usable])
    best = (f @ i.T).argmax(dim=1).tolist()
    hits = sum(usable[b].impression == r.impression for b, r in zip(best, usable, strict=True))
    return float(hits) / len(usable)


def train_report_encoder(
    train: Sequence[ReportRecord],
    out_dir: Path,
    cfg: ReportEncoderTrainConfig | None = None,
    val: Sequence[ReportRecord] = (),
) -> ReportEncoderTrainResult:
    """Train the tokenizer and the encoder on ``train`` reports; write them to ``out_dir``."""
    cfg = cfg or ReportEncoderTrainConfig()
    usable = [r for r in train if r.findings and r.impression]
    if len(usable) < 2:
        raise TrainingError(
            f"report encoder training needs at least 2 reports with findings and impression; "
            f"got {len(usable)} of {len(train)}"
        )
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    out_dir.mkdir(parents=True, exist_ok=True)

    model_kwargs, max_length = roberta_config(cfg.config)
    vocab = cfg.vocab_size or int(model_kwargs["vocab_size"])
    train_tokenizer((r.text for r in usable), out_dir / TOKENIZER_FILE, vocab_size=vocab)
    tokenizer = load_tokenizer(out_dir / TOKENIZER_FILE)
    model_kwargs["vocab_size"] = len(tokenizer)
    model = RobertaForMaskedLM(RobertaConfig(**model_kwargs))
    model.to(cfg.device)  # type: ignore[arg-type]  # transformers wraps .to
    encoder = ReportEncoder(model.roberta, tokenizer, max_length=max_length)
    collator = DataCollatorForLanguageModeling(
        tokenizer=tokenizer, mlm_probability=cfg.mlm_probability, return_tensors="pt"
    )

    steps_per_epoch = math.ceil(len(usable) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    schedule = get_linear_schedule_with_warmup(
        optimiser, int(cfg.warmup_fraction * total), max(total, 1)
    )
    history: list[dict[str, float]] = []
    step = 0
    progress = tqdm(total=total, desc=f"report encoder ({cfg.config})", unit="step")
    for epoch in range(cfg.epochs):
        model.train()
        sums = {"loss": 0.0, "mlm": 0.0, "section": 0.0}
        n = 0
        for batch_idx in _batches(usable, cfg.batch_size, rng):
            if step >= total:
                break
            batch = [usable[i] for i in batch_idx]
            encoded = tokenizer([r.text for r in batch], truncation=True, max_length=max_length)
            features = [
                {"input_ids": ids, "attention_mask": mask}
                for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
            ]
            mlm_batch = {k: v.to(cfg.device) for k, v in collator(features).items()}
            mlm_loss = model(**mlm_batch).loss
            section_loss = torch.zeros((), device=cfg.device)
            if cfg.section_weight > 0 and len(batch) > 1:
                f_tok = encoder.tokenize([r.findings for r in batch])
                i_tok = encoder.tokenize([r.impression for r in batch])
                f_emb = mean_pool(model.roberta(**f_tok).last_hidden_state, f_tok["attention_mask"])
                i_emb = mean_pool(model.roberta(**i_tok).last_hidden_state, i_tok["attention_mask"])
                section_loss = info_nce(
                    f_emb, i_emb, cfg.temperature, keys=[r.impression.lower() for r in batch]
                )
            loss = mlm_loss + cfg.section_weight * section_loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            n += 1
            sums["loss"] += loss.item()
            sums["mlm"] += mlm_loss.item()
            sums["section"] += section_loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch + 1)
        if n == 0:
            break
        record = {k: v / n for k, v in sums.items()} | {"epoch": float(epoch + 1)}
        if val:
            record["val_section_top1"] = section_matching_accuracy(encoder, val)
        history.append(record)
        logger.info("report encoder epoch %d: %s", epoch + 1, record)
    progress.close()

    model.eval()
    save_file(
        {k: v.contiguous() for k, v in model.roberta.state_dict().items()},
        str(out_dir / WEIGHTS_FILE),
    )
    config_dict: dict[str, Any] = model.roberta.config.to_diff_dict()
    (out_dir / CONFIG_FILE).write_text(
        json.dumps({"name": cfg.config, "max_length": max_length, "config": config_dict}, indent=2),
        encoding="utf-8",
    )
    (out_dir / HISTORY_FILE).write_text(
        json.dumps({"train_config": asdict(cfg), "history": history}, indent=2), encoding="utf-8"
    )
    return ReportEncoderTrainResult(out_dir=out_dir, steps=step, history=history)


def read_text_config(model_dir: Path) -> dict[str, Any]:
    """The ``text_config.json`` of a trained encoder folder."""
    path = model_dir / CONFIG_FILE
    if not path.is_file():
        raise TrainingError(f"{path} not found: is {model_dir} a trained report encoder?")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_report_encoder(model_dir: Path, device: str = "cpu") -> ReportEncoder:
    """A :class:`ReportEncoder` from a folder written by :func:`train_report_encoder`."""
    meta = read_text_config(model_dir)
    return ReportEncoder.from_parts(
        meta["config"],
        model_dir / TOKENIZER_FILE,
        state_dict=load_file(str(model_dir / WEIGHTS_FILE)),
        max_length=int(meta["max_length"]),
        device=device,
    )
