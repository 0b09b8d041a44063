"""Model benchmark: per-sequence inference latency, training samples/s and peak memory.

For the ``small`` (CPU) and ``base`` (DenseNet-121, NeuroBERT-sized) configs,
each measured in its own subprocess (so peak memory is that config's alone):

* image encoder: inference latency of one preprocessed volume (batch 1, no grad)
  at the config's input size, and training samples/s (forward + backward +
  AdamW step, MSE to a report embedding) at a given batch size;
* report encoder: latency of encoding 8 query sentences, and training steps/s
  of MLM + section matching on a batch of synthetic reports;
* peak memory: the process' peak RSS on CPU; ``torch.cuda.max_memory_allocated``
  on GPU;
* an estimate of the image-training time of the demo model from the measured
  rate (studies x sequences x epochs / samples per second).

Usage::

    .venv/bin/python bench/model.py [--configs small,base] [--device cpu|cuda]
        [--threads 2] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from training.machine import describe_machine

SIZES = {"tiny": 32, "small": 64, "base": 120}
TRAIN_BATCH = {"tiny": 8, "small": 8, "base": 4}
TEXT_CONFIG = {"tiny": "tiny", "small": "small", "base": "base"}
DEMO = {"studies": 450, "sequences": 3, "epochs": 12}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn: Any, repeat: int, sync: Any) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def run_one(config: str, device: str, threads: int, repeat: int) -> dict[str, Any]:
    import torch

    from pipeline.model.networks import build_network, image_encoder_args
    from pipeline.model.text_encoder import ReportEncoder
    from training.image.losses import alignment_loss
    from training.text.configs import roberta_config
    from training.text.losses import info_nce

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    cuda = dev.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    text_kwargs, _max_length = roberta_config(TEXT_CONFIG[config])
    embed = int(text_kwargs["hidden_size"])
    net = build_network("SequenceEncoder", image_encoder_args(config, embed)).to(dev)
    params = sum(p.numel() for p in net.parameters())
    size = SIZES[config]
    x1 = torch.randn(1, 1, size, size, size, device=dev)
    net.eval()

    def infer() -> None:
        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
            net(x1)

    latency = _timed(infer, repeat, sync)

    batch = TRAIN_BATCH[config]
    xb = torch.randn(batch, 1, size, size, size, device=dev)
    target = torch.nn.functional.normalize(torch.randn(batch, embed, device=dev), dim=-1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    net.train()

    def step() -> None:
        with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
            pred = net(xb)
        loss = alignment_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step_time = _timed(step, max(2, repeat // 2), sync)

    # report encoder
    from transformers import RobertaConfig, RobertaForMaskedLM

    mlm = RobertaForMaskedLM(RobertaConfig(**text_kwargs)).to(dev)
    text_params = sum(p.numel() for p in mlm.roberta.parameters())
    tokens = 96 if config != "tiny" else 48
    ids = torch.randint(5, int(text_kwargs["vocab_size"]), (16, tokens), device=dev)
    mask = torch.ones_like(ids)
    short = torch.randint(5, int(text_kwargs["vocab_size"]), (8, 12), device=dev)
    mlm.eval()

    def encode_queries() -> None:
        with torch.no_grad():
            mlm.roberta(input_ids=short, attention_mask=torch.ones_like(short))

    text_latency = _timed(encode_queries, repeat, sync)
    text_opt = torch.optim.AdamW(mlm.parameters(), lr=1e-4)
    mlm.train()

    def text_step() -> None:
        out = mlm(input_ids=ids, attention_mask=mask, labels=ids)
        f = mlm.roberta(input_ids=ids[:, : tokens // 2], attention_mask=mask[:, : tokens // 2])
        i = mlm.roberta(input_ids=ids[:, tokens // 2 :], attention_mask=mask[:, tokens // 2 :])
        loss = out.loss + info_nce(f.last_hidden_state.mean(1), i.last_hidden_state.mean(1))
        text_opt.zero_grad()
        loss.backward()
        text_opt.step()

    text_step_time = _timed(text_step, max(2, repeat // 2), sync)
    _ = ReportEncoder  # the inference class wraps the same RobertaModel
    samples_per_s = batch / step_time
    demo_seconds = DEMO["studies"] * DEMO["sequences"] * DEMO["epochs"] / samples_per_s
    return {
        "config": config,
        "device": str(dev),
        "threads": threads,
        "input": f"{size}^3",
        "image_params_M": round(params / 1e6, 3),
        "image_fp16_MB": round(params * 2 / 1e6, 2),
        "image_latency_ms": round(latency * 1e3, 1),
        "image_train_batch": batch,
        "image_train_samples_per_s": round(samples_per_s, 2),
        "text_params_M": round(text_params / 1e6, 3),
        "text_encode_8_queries_ms": round(text_latency * 1e3, 1),
        "text_train_steps_per_s": round(1 / text_step_time, 3),
        "text_train_batch": 16,
        "peak_memory_MB": round(
            torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb(), 1
        ),
        "peak_memory_kind": "cuda max allocated" if cuda else "process peak RSS",
        "demo_image_training_estimate_min": round(demo_seconds / 60, 1),
        "demo_assumption": DEMO,
    }


def table(rows: list[dict[str, Any]]) -> str:
    keys = [
        "config",
        "device",
        "input",
        "image_params_M",
        "image_latency_ms",
        "image_train_samples_per_s",
        "text_params_M",
        "text_encode_8_queries_ms",
        "text_train_steps_per_s",
        "peak_memory_MB",
        "demo_image_training_estimate_min",
    ]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="small,base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.device, args.threads, args.repeat)))
        return
    rows = []
    for config in args.configs.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                config,
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--repeat",
                str(args.repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    machine = describe_machine()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
