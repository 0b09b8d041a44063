"""``dicom-node-train image-encoders``: train one image encoder per sequence (ALIGN).

Several GPUs: ``torchrun --nproc-per-node N $(command -v dicom-node-train) image-encoders
... --device cuda`` (each process takes GPU ``LOCAL_RANK``; rank 0 writes checkpoints).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.model.networks import IMAGE_CONFIGS
from training.data.prepare import sequences_arg
from training.image.train import ImageTrainConfig, parse_sequence_epochs, train_image_encoders


@click.command("image-encoders")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option(
    "--report-encoder",
    "text_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--sequences", default="", help="Comma-separated sequences (default: every cached one)."
)
@click.option(
    "--config",
    "config_name",
    type=click.Choice(sorted(IMAGE_CONFIGS)),
    default="small",
    show_default=True,
)
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=1e-3, show_default=True)
@click.option(
    "--target",
    "target_section",
    type=click.Choice(["report", "findings", "impression", "affirmed"]),
    default="report",
    show_default=True,
    help="Which report text the images regress (affirmed: without purely negated sentences).",
)
@click.option("--normalize-prediction/--raw-prediction", default=False, show_default=True)
@click.option(
    "--contrastive-weight",
    type=float,
    default=0.0,
    show_default=True,
    help="Add this weight times an image-report InfoNCE term to the MSE (0 = ALIGN MSE only).",
)
@click.option(
    "--augment",
    type=float,
    default=0.0,
    show_default=True,
    help="Augmentation strength (0 = off, 1 = default ranges).",
)
@click.option(
    "--pooling",
    type=click.Choice(["avg", "max"]),
    default="avg",
    show_default=True,
    help="Global pooling of the CNN's last feature map (max keeps small focal lesions).",
)
@click.option(
    "--sequence-epochs",
    default="",
    show_default=True,
    help="Epochs for some sequences instead of --epochs, e.g. T1C=20,SWI=15.",
)
@click.option(
    "--asymmetry/--no-asymmetry",
    default=False,
    show_default=True,
    help="Add a left-right asymmetry channel (image minus its mirror) to the CNN's input.",
)
@click.option("--workers", "num_workers", type=int, default=0, show_default=True)
@click.option("--no-resume", is_flag=True, help="Start again even if checkpoints exist.")
@click.option("--amp/--no-amp", default=True, show_default=True, help="bf16 autocast on CUDA.")
@click.option("--max-steps", type=int, default=None)
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads (1 on a busy machine).")
@click.option(
    "--processes",
    type=int,
    default=1,
    show_default=True,
    help="Sequences trained at once, one process each (CPU; e.g. the number of cores).",
)
def image_encoders(
    cache_dir: Path,
    text_dir: Path,
    out_dir: Path,
    sequences: str,
    config_name: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    target_section: str,
    normalize_prediction: bool,
    contrastive_weight: float,
    augment: float,
    pooling: str,
    sequence_epochs: str,
    asymmetry: bool,
    num_workers: int,
    no_resume: bool,
    amp: bool,
    max_steps: int | None,
    device: str,
    seed: int,
    threads: int | None,
    processes: int,
) -> None:
    """Train the per-sequence 3D CNNs to regress report embeddings (MSE)."""
    cfg = ImageTrainConfig(
        config=config_name,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        target_section=target_section,  # type: ignore[arg-type]  # click.Choice checked it
        normalize_prediction=normalize_prediction,
        contrastive_weight=contrastive_weight,
        augment=augment,
        pooling=pooling,  # type: ignore[arg-type]  # click.Choice checked it
        asymmetry=asymmetry,
        sequence_epochs=parse_sequence_epochs(sequence_epochs),
        num_workers=num_workers,
        amp=amp,
        resume=not no_resume,
        max_steps=max_steps,
        seed=seed,
        device=device,
        threads=threads,
        processes=processes,
    )
    results = train_image_encoders(
        cache_dir, text_dir, out_dir, cfg, sequences_arg(sequences) or None
    )
    click.echo(
        json.dumps(
            {
                seq: {
                    "best_val_loss": r.best_val_loss,
                    "epochs": r.epochs_run,
                    "samples_per_second": r.samples_per_second,
                }
                for seq, r in results.items()
            },
            indent=2,
        )
    )
