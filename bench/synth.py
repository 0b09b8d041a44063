"""Synthetic data benchmark: full DICOM studies per minute on N cores, disk per study,
and the streaming path (prepared studies per minute, MB per prepared study).

* ``dataset``: :func:`training.synth.generate_dataset` with ``--workers`` processes
  writes ``--studies`` full-size studies (DICOM + reports + labels + masks) into a
  temporary folder; wall time after the template is loaded (first study of each
  worker pays ~3-6 s for it, reported separately), studies/min, mean MB/study.
CPU seconds per study are measured on the workers (``RUSAGE_CHILDREN``), so the
"on N free cores" rate holds even when the machine is shared; wall rates are what
this run saw.

* ``stream``: :func:`training.synth.stream.iter_prepared` makes ``--studies``
  prepared studies (ALIGN preprocessing, 120^3) of ``--sequences``; studies/min
  and MB/study of float16 tensors.

Usage::

    .venv/bin/python bench/synth.py [--studies 12] [--workers 2] [--sequences T2,FLAIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _warm(_: int) -> float:
    from training.synth.anatomy import load_template

    start = time.perf_counter()
    load_template()
    return time.perf_counter() - start


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes (the pool's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_dataset(studies: int, workers: int, seed: int) -> dict[str, float]:
    """Write a dataset; returns timings and sizes."""
    from training.synth.dataset import generate_dataset

    out = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        # warm one process to report the template cost apart
        with ProcessPoolExecutor(max_workers=1) as pool:
            template_s = next(pool.map(_warm, [0]))
        cpu0 = _children_cpu()
        start = time.perf_counter()
        generate_dataset(out, studies, seed, None, workers)
        wall = time.perf_counter() - start
        cpu = _children_cpu() - cpu0 if workers > 1 else time.process_time()
        dicom = _disk(out / "dicom")
        return {
            "studies": studies,
            "workers": workers,
            "wall_s": wall,
            "template_load_s": template_s,
            "studies_per_min": 60 * studies / wall,
            "studies_per_min_excl_template": 60 * studies / max(wall - template_s, 1e-6),
            "cpu_s_per_study": cpu / studies,
            "studies_per_min_on_n_free_cores": workers * 60 * studies / cpu,
            "mb_per_study": dicom / studies / 1e6,
            "instances_per_study": sum(1 for _ in (out / "dicom").rglob("*.dcm")) / studies,
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bench_stream(
    studies: int, workers: int, seed: int, sequences: tuple[str, ...]
) -> dict[str, float]:
    """Prepare studies in memory; returns timings and sizes."""
    from pipeline.preprocess import PreprocessSpec
    from training.synth.stream import iter_prepared

    cpu0 = _children_cpu() if workers > 1 else time.process_time()
    start = time.perf_counter()
    sizes = [
        p.nbytes()
        for p in iter_prepared(seed, studies, None, PreprocessSpec(), sequences, workers=workers)
    ]
    wall = time.perf_counter() - start
    cpu = (_children_cpu() if workers > 1 else time.process_time()) - cpu0
    return {
        "studies": studies,
        "workers": workers,
        "sequences": len(sequences),
        "wall_s": wall,
        "studies_per_min": 60 * studies / wall,
        "cpu_s_per_study": cpu / studies,
        "studies_per_min_on_n_free_cores": workers * 60 * studies / cpu,
        "mb_per_study": sum(sizes) / len(sizes) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--sequences", default="T2,FLAIR", help="stream: sequences to prepare")
    parser.add_argument("--skip-stream", action="store_true")
    args = parser.parse_args()
    result = bench_dataset(args.studies, args.workers, args.seed)
    print("dataset (full DICOM studies):")
    for key, value in result.items():
        print(f"  {key:32s} {value:10.2f}")
    if not args.skip_stream:
        seqs = tuple(s.strip() for s in args.sequences.split(",") if s.strip())
        result = bench_stream(args.studies, args.workers, args.seed, seqs)
        print(f"stream (prepared {','.join(seqs)}, ALIGN 120^3 float16):")
        for key, value in result.items():
            print(f"  {key:32s} {value:10.2f}")


if __name__ == "__main__":
    main()
