"""Training the per-sequence image encoders (ALIGN): volume -> report embedding, MSE.

For every sequence of the cache a :class:`pipeline.model.networks.SequenceEncoder`
is trained to regress the L2-normalised embedding of its study's report, made by
the trained report encoder. Features:

* mixed precision on GPU (bf16 autocast), full precision on CPU;
* ``torchrun`` DDP: ``torchrun --nproc-per-node N $(command -v dicom-node-train)
  image-encoders ... --device cuda`` (Gloo on CPU, NCCL on GPU);
* a checkpoint (``last.pt``) after every epoch and resume from it;
* validation every epoch; the best weights (lowest validation loss) kept in
  ``best.safetensors``;
* a tqdm progress bar with the loss and ETA.

Output folder: ``image_config.json`` and per sequence ``<SEQ>/network.json``
(class name + init args), ``best.safetensors``, ``last.pt``, ``history.json``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from dicom_node.errors import TrainingError
from pipeline.model.networks import build_network, image_encoder_args
from pipeline.model.text_encoder import ReportEncoder
from training.data.cache import CachedStudy, SequenceDataset, StudyCache, read_cache
from training.data.reports import TargetText, target_text
from training.image.augment import train_augmentation
from training.image.distributed import DistContext, all_reduce_mean, barrier, init_distributed
from training.image.losses import (
    alignment_loss,
    contrastive_alignment_loss,
    cosine_agreement,
)
from training.text.train import load_report_encoder

logger = logging.getLogger(__name__)

Section = TargetText
NETWORK_FILE = "network.json"
BEST_FILE = "best.safetensors"
LAST_FILE = "last.pt"
HISTORY_FILE = "history.json"
CONFIG_FILE = "image_config.json"


def parse_sequence_epochs(text: str) -> dict[str, int]:
    """``"T1C=20,SWI=15"`` -> ``{"T1C": 20, "SWI": 15}`` (empty text: no overrides).

    Raises:
        TrainingError: an item that is not ``SEQUENCE=EPOCHS`` with a positive count.
    """
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, count = item.partition("=")
        if not sep or not name.strip() or not count.strip().isdigit() or int(count) < 1:
            raise TrainingError(
                f"per-sequence epochs {item!r}: expected SEQUENCE=EPOCHS, e.g. T1C=20"
            )
        out[name.strip()] = int(count)
    return out


@dataclass
class ImageTrainConfig:
    """Hyper-parameters of the image encoders."""

    config: str = "small"
    epochs: int = 10
    sequence_epochs: dict[str, int] = field(default_factory=dict)
    """Epochs for some sequences instead of ``epochs`` (e.g. ``{"T1C": 20}``: a
    sequence present in fewer studies, or slower to learn, gets more passes)."""
    batch_size: int = 8
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    target_section: Section = "report"
    """Which text the image embedding regresses: whole report, findings, impression, or
    ``affirmed`` (the whole report without its purely negated sentences, see
    :meth:`training.labels.negex.NegExExtractor.drop_negated`)."""
    normalize_prediction: bool = False
    contrastive_weight: float = 0.0
    """Weight of an image-report InfoNCE term added to the MSE
    (:func:`training.image.losses.contrastive_alignment_loss`); 0 = pure ALIGN MSE."""
    contrastive_temperature: float = 0.1
    pooling: Literal["avg", "max"] = "avg"
    """Global pooling of the CNN's last feature map (``SequenceEncoder(pooling=...)``)."""
    asymmetry: bool = False
    """Give the CNN a left-right asymmetry channel (``SequenceEncoder(asymmetry=True)``)."""
    augment: float = 0.0
    """Augmentation strength (0 = none, 1 = ±8° rotations, ±4 voxel shifts, ±6 % scale,
    intensity ±10 %, noise); see :mod:`training.image.augment`."""
    num_workers: int = 0
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    resume: bool = True
    max_steps: int | None = None
    """Stop each sequence after this many optimiser steps (tests, smoke runs)."""
    min_studies: int = 4
    """Sequences with fewer training studies are skipped."""
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    """CPU intra-op threads (``torch.set_num_threads``); 1 avoids OpenMP oversubscription
    on a busy machine, where 3D convolutions ran ~30x slower with 2 threads on 2 cores."""
    processes: int = 1
    """Sequences trained at once, one process each (CPU, not with DDP): on a machine
    with N cores, N single-threaded processes keep every core busy, where one process
    gains little from more threads on small 3D convolutions."""


@dataclass
class SequenceTrainResult:
    """How one sequence's encoder trained."""

    sequence: str
    out_dir: Path
    best_val_loss: float
    epochs_run: int
    steps: int
    samples_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)


def section_text(study: CachedStudy, section: Section) -> str:
    """The text of ``study`` that its images should embed to."""
    return target_text(study.report, section)


def report_targets(
    encoder: ReportEncoder, studies: Sequence[CachedStudy], section: Section
) -> dict[str, Tensor]:
    """Study key -> unit report embedding (E,) from the report encoder."""
    texts = [section_text(s, section) for s in studies]
    embeddings = encoder.encode(texts)
    return {s.key: embeddings[i] for i, s in enumerate(studies)}


def warmup_cosine(total_steps: int, warmup_fraction: float = 0.1, floor: float = 0.02) -> Any:
    """LR factor per step: linear warm-up, then cosine decay to ``floor``.

    A function of the step and the *current* total, so a resumed run with more
    epochs simply stretches the remaining decay.
    """
    total = max(total_steps, 1)
    warmup = max(int(warmup_fraction * total), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _autocast(device: torch.device, amp: bool) -> torch.autocast:
    enabled = amp and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def _validate(
    model: nn.Module,
    loader: DataLoader[tuple[Tensor, Tensor]],
    device: torch.device,
    cfg: ImageTrainConfig,
) -> tuple[float, float]:
    model.eval()
    total_loss = total_cos = 0.0
    n = 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        with _autocast(device, cfg.amp):
            pred = model(images)
        total_loss += float(alignment_loss(pred, targets, cfg.normalize_prediction)) * len(images)
        total_cos += float(cosine_agreement(pred, targets)) * len(images)
        n += len(images)
    return (total_loss / n, total_cos / n) if n else (math.nan, math.nan)


def constant_baseline_loss(
    train: SequenceDataset, val: SequenceDataset, normalize_prediction: bool = False
) -> float:
    """Validation loss of the best constant prediction: the mean training target.

    An encoder whose validation loss does not fall below this has learnt nothing
    from the images (report embeddings that are all alike make this loss small, so
    the raw validation loss alone says little). NaN when a split is empty.
    """
    train_keys = [s.key for s in train.items]
    val_keys = [s.key for s in val.items]
    if not train_keys or not val_keys:
        return math.nan
    mean = torch.stack([train.targets[k] for k in train_keys]).float().mean(dim=0)
    val_targets = torch.stack([val.targets[k] for k in val_keys]).float()
    return float(alignment_loss(mean.expand_as(val_targets), val_targets, normalize_prediction))


def _unwrap(model: nn.Module) -> nn.Module:
    inner = getattr(model, "module", model)
    return inner if isinstance(inner, nn.Module) else model


def train_sequence_encoder(
    cache: StudyCache,
    sequence: str,
    targets: dict[str, Tensor],
    out_dir: Path,
    cfg: ImageTrainConfig,
    ctx: DistContext | None = None,
) -> SequenceTrainResult:
    """Train (or resume) the encoder of one sequence on the cache's train split."""
    ctx = ctx or DistContext()
    device = torch.device(
        f"cuda:{ctx.local_rank}" if cfg.device.startswith("cuda") and ctx.enabled else cfg.device
    )
    torch.manual_seed(cfg.seed)
    transform = train_augmentation(cfg.seed + ctx.rank, cfg.augment) if cfg.augment > 0 else None
    train_set = SequenceDataset(cache, cache.split("train"), sequence, targets, transform)
    val_set = SequenceDataset(cache, cache.split("val"), sequence, targets)
    if len(train_set) < cfg.min_studies:
        raise TrainingError(
            f"sequence {sequence}: {len(train_set)} training studies, fewer than "
            f"min_studies={cfg.min_studies}"
        )
    baseline = constant_baseline_loss(train_set, val_set, cfg.normalize_prediction)
    embed_dim = int(next(iter(targets.values())).shape[0])
    init_args = image_encoder_args(cfg.config, embed_dim, cfg.pooling, cfg.asymmetry)
    model = build_network("SequenceEncoder", init_args).to(device)
    sampler: DistributedSampler[tuple[Tensor, Tensor]] | None = (
        DistributedSampler(train_set, shuffle=True, seed=cfg.seed) if ctx.enabled else None
    )
    train_loader: DataLoader[tuple[Tensor, Tensor]] = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=len(train_set) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    val_loader: DataLoader[tuple[Tensor, Tensor]] = DataLoader(
        val_set, batch_size=cfg.batch_size, num_workers=cfg.num_workers
    )
    if ctx.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = max(len(train_loader), 1)
    epochs = cfg.sequence_epochs.get(sequence, cfg.epochs)
    total_steps = steps_per_epoch * epochs
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, warmup_cosine(total_steps))

    seq_dir = out_dir / sequence
    seq_dir.mkdir(parents=True, exist_ok=True)
    (seq_dir / NETWORK_FILE).write_text(
        json.dumps({"class_name": "SequenceEncoder", "init_args": init_args}, indent=2),
        encoding="utf-8",
    )
    start_epoch, step, best = 0, 0, math.inf
    history: list[dict[str, float]] = []
    last = seq_dir / LAST_FILE
    if cfg.resume and last.is_file():
        state = torch.load(last, map_location=device, weights_only=True)
        _unwrap(model).load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        start_epoch, step, best = int(state["epoch"]), int(state["step"]), float(state["best"])
        history = list(state["history"])
        logger.info("%s: resuming after epoch %d (step %d)", sequence, start_epoch, step)

    progress = tqdm(
        total=total_steps,
        initial=step,
        desc=f"image encoder {sequence}",
        unit="step",
        disable=not ctx.is_main,
    )
    samples, seconds = 0, 0.0
    epoch = start_epoch
    for epoch in range(start_epoch, epochs):
        if step >= total_steps:
            break
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        loss_sum, batches = 0.0, 0
        for images, batch_targets in train_loader:
            if step >= total_steps:
                break
            began = time.perf_counter()
            images, batch_targets = images.to(device), batch_targets.to(device)
            with _autocast(device, cfg.amp):
                pred = model(images)
            loss = alignment_loss(pred, batch_targets, cfg.normalize_prediction)
            if cfg.contrastive_weight > 0 and len(images) > 1:
                loss = loss + cfg.contrastive_weight * contrastive_alignment_loss(
                    pred, batch_targets, cfg.contrastive_temperature
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            seconds += time.perf_counter() - began
            samples += len(images)
            step += 1
            batches += 1
            loss_sum += loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1)
        train_loss = all_reduce_mean(loss_sum / max(batches, 1), ctx, device)
        val_loss, val_cos = _validate(model, val_loader, device, cfg)
        if math.isnan(val_loss):
            val_loss, val_cos = train_loss, math.nan
        record = {
            "epoch": float(epoch + 1),
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_cosine": val_cos,
            "val_baseline_loss": baseline,
        }
        history.append(record)
        improved = val_loss < best
        best = min(best, val_loss)
        if ctx.is_main:
            net = _unwrap(model)
            if improved:
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
                    str(seq_dir / BEST_FILE),
                )
            torch.save(
                {
                    "model": net.state_dict(),
                    "optimizer": optimiser.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "epoch": epoch + 1,
                    "step": step,
                    "best": best,
                    "history": history,
                },
                last,
            )
            logger.info("%s epoch %d: %s", sequence, epoch + 1, record)
        barrier(ctx)
    progress.close()
    rate = samples / seconds if seconds > 0 else math.nan
    if ctx.is_main:
        (seq_dir / HISTORY_FILE).write_text(
            json.dumps({"history": history, "samples_per_second": rate}, indent=2),
            encoding="utf-8",
        )
    return SequenceTrainResult(
        sequence=sequence,
        out_dir=seq_dir,
        best_val_loss=best,
        epochs_run=len(history),
        steps=step,
        samples_per_second=rate,
        history=history,
    )


def train_image_encoders(
    cache_dir: Path,
    report_encoder_dir: Path,
    out_dir: Path,
    cfg: ImageTrainConfig | None = None,
    sequences: Sequence[str] | None = None,
) -> dict[str, SequenceTrainResult]:
    """Train one encoder per sequence of the cache (or of ``sequences``)."""
    cfg = cfg or ImageTrainConfig()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    ctx = init_distributed(cfg.device)
    cache = read_cache(cache_dir)
    encoder = load_report_encoder(report_encoder_dir, device="cpu")
    targets = report_targets(encoder, cache.studies, cfg.target_section)
    chosen = list(sequences) if sequences else cache.sequences
    unknown = sorted(set(chosen) - set(cache.sequences))
    if unknown:
        raise TrainingError(f"sequences {unknown} are not in cache {cache_dir}")
    unused = sorted(set(cfg.sequence_epochs) - set(chosen))
    if unused:
        logger.warning(
            "per-sequence epochs for %s ignored: not among the sequences trained %s",
            unused,
            chosen,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        (out_dir / CONFIG_FILE).write_text(
            json.dumps(
                {
                    "train_config": asdict(cfg),
                    "report_encoder": str(report_encoder_dir),
                    "cache": str(cache_dir),
                    "sequences": chosen,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    results: dict[str, SequenceTrainResult] = {}
    if cfg.processes > 1 and not ctx.enabled and len(chosen) > 1:
        results = _train_in_processes(cache_dir, chosen, targets, out_dir, cfg)
    else:
        for seq in chosen:
            try:
                results[seq] = train_sequence_encoder(cache, seq, targets, out_dir, cfg, ctx)
            except TrainingError as exc:
                logger.warning("skipping sequence %s: %s", seq, exc)
    if not results:
        raise TrainingError(f"no sequence of {chosen} could be trained")
    return results


def _train_one_in_subprocess(
    cache_dir: Path,
    sequence: str,
    targets: dict[str, Tensor],
    out_dir: Path,
    cfg: ImageTrainConfig,
) -> SequenceTrainResult | str:
    """Worker of :func:`_train_in_processes`: a result, or why the sequence was skipped."""
    torch.set_num_threads(cfg.threads or 1)
    try:
        return train_sequence_encoder(read_cache(cache_dir), sequence, targets, out_dir, cfg)
    except TrainingError as exc:
        return str(exc)


def _train_in_processes(
    cache_dir: Path,
    sequences: Sequence[str],
    targets: dict[str, Tensor],
    out_dir: Path,
    cfg: ImageTrainConfig,
) -> dict[str, SequenceTrainResult]:
    """Train several sequences at once, one (spawned) process per sequence."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results: dict[str, SequenceTrainResult] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(cfg.processes, len(sequences)), mp_context=context) as pool:
        futures = {
            seq: pool.submit(_train_one_in_subprocess, cache_dir, seq, targets, out_dir, cfg)
            for seq in sequences
        }
        for seq, future in futures.items():
            outcome = future.result()
            if isinstance(outcome, str):
                logger.warning("skipping sequence %s: %s", seq, outcome)
            else:
                results[seq] = outcome
    return results


def load_sequence_encoder(seq_dir: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The best weights of one trained sequence encoder and its network description."""
    spec: dict[str, Any] = json.loads((seq_dir / NETWORK_FILE).read_text(encoding="utf-8"))
    net = build_network(spec["class_name"], spec["init_args"])
    net.load_state_dict(load_file(str(seq_dir / BEST_FILE)))
    return net.to(device).eval(), spec
