"""Throughput of the Ray Data preprocessing jobs against single-process decoding bounds.

Images: images/s of the image job against a single-process Pillow bound.

Baseline: one process reads each file and applies the same decode policy
(``preprocessing.images.decode_image``: Pillow decode, RGB, resize shorter side, center crop),
giving a single-core rate R. The ideal for N cores is N x R. The job (``preprocess_images``
on a fresh local Ray cluster with N CPUs, which also hashes the bytes and writes zstd Parquet
shards and a manifest) is timed end to end, without ``ray.init``. Reported: its rate and the
ratio rate / (N x R); the target is >= 0.8.

Video: decoded frames/s of the video job (``preprocess_video``: PyAV decode of every frame,
pts sort, sampling of 32 frames, resize + crop, Parquet) against PyAV decoding every frame
of the same clips to RGB arrays in one process, times N.

    .venv/bin/python -m benchmarks.preprocess_throughput --images 400 --clips 24 --cpus 2
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks._record import record


def write_images(root: Path, count: int, seed: int = 0) -> list[Path]:
    """ImageNet-like JPEGs (typical 500x375 and 375x500, quality 90) in the folder layout."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        wnid = f"n{i % 10:08d}"
        w, h = (500, 375) if i % 2 else (375, 500)
        # Smooth content with noise compresses like a photo, not like pure noise.
        base = rng.integers(0, 256, size=(h // 25 + 1, w // 25 + 1, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC)
        arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, size=(h, w, 3))
        path = root / "train" / wnid / f"{wnid}_{i}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def baseline_rate(paths: list[Path], repeats: int = 2) -> float:
    """Single-process images/s of read + decode policy (best of ``repeats``)."""
    from preprocessing.images import decode_image

    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for p in paths:
            decode_image(p.read_bytes())
        best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def shard_function_rate(raw: Path, out: Path, rows_per_shard: int) -> float:
    """Images/s of the job's own per-shard function (decode, hash, Parquet write) run
    sequentially in this process, without Ray: separates Ray's overhead from the work."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.job import image_spec
    from preprocessing.layouts.imagenet import scan_imagenet
    from preprocessing.shard_task import plan_shards, write_shard

    scan = scan_imagenet(raw)
    spec = image_spec(ImagePreprocessConfig(rows_per_shard=rows_per_shard))
    tasks = plan_shards(scan.files, rows_per_shard, 1)
    write_shard(tasks[0], str(raw), str(out / "warm"), spec)  # imports, codec set-up
    start = time.perf_counter()
    for task in tasks:
        write_shard(task, str(raw), str(out / "seq"), spec)
    return len(scan.files) / (time.perf_counter() - start)


def job_rate(raw: Path, out_root: Path, cpus: int, rows_per_shard: int, repeats: int) -> float:
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.job import preprocess_images

    config = ImagePreprocessConfig(rows_per_shard=rows_per_shard)
    n = sum(1 for p in raw.rglob("*.JPEG"))
    preprocess_images(raw, out_root / "warmup", config)  # worker start-up, imports
    best = 0.0
    for r in range(repeats):
        start = time.perf_counter()
        m = preprocess_images(raw, out_root / f"run{r}", config)
        elapsed = time.perf_counter() - start
        if m.rows_written != n:
            raise RuntimeError(f"job wrote {m.rows_written} rows for {n} images")
        best = max(best, n / elapsed)
    return best


def write_clips(root: Path, count: int) -> tuple[list[Path], int]:
    """H.264 MP4 clips (320x240, 25 fps, 3 s) in the class-folder layout; returns frame count."""
    from preprocessing.sample_data_video import encode_clip

    paths, frames = [], 0
    for i in range(count):
        label = f"class{i % 4}"
        data = encode_clip("mp4", "libx264", (320, 240), 25, 75, i % 4, 4)
        path = root / "train" / label / f"clip{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
        frames += 75
    return paths, frames


def pyav_frame_rate(paths: list[Path]) -> float:
    """Single-process decoded frames/s: PyAV decode of every frame to an RGB array."""
    import av

    start, frames = time.perf_counter(), 0
    for p in paths:
        with av.open(str(p)) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format="rgb24")
                frames += 1
    return frames / (time.perf_counter() - start)


def video_job_rate(raw: Path, out_root: Path, frames: int) -> float:
    from preprocessing.config import VideoPreprocessConfig
    from preprocessing.video_job import preprocess_video

    config = VideoPreprocessConfig(rows_per_shard=2)
    preprocess_video(raw, out_root / "warmup", config)
    start = time.perf_counter()
    m = preprocess_video(raw, out_root / "run", config)
    elapsed = time.perf_counter() - start
    if m.quarantined:
        raise RuntimeError(f"video job quarantined {m.quarantined} clips")
    return frames / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--rows-per-shard", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clips", type=int, default=24, help="video clips (0 = skip video)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-preprocess-"))
    try:
        paths = write_images(tmp / "raw", args.images)
        single = baseline_rate(paths)
        shard_fn = shard_function_rate(tmp / "raw", tmp / "seq", args.rows_per_shard)
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        rate = job_rate(tmp / "raw", tmp / "out", args.cpus, args.rows_per_shard, args.repeats)
        video = None
        if args.clips:
            clips, frames = write_clips(tmp / "clips", args.clips)
            video = (pyav_frame_rate(clips), video_job_rate(tmp / "clips", tmp / "vout", frames))
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bound = single * args.cpus
    ratio = rate / bound
    body = "\n".join(
        [
            "## Preprocessing throughput (`benchmarks/preprocess_throughput.py`)",
            "",
            f"{args.images} JPEGs (500x375 / 375x500, quality 90) -> 224x224x3 shards.",
            "",
            "| measure | images/s |",
            "| --- | --- |",
            f"| plain Pillow decode + resize + crop, 1 process (R) | {single:.1f} |",
            f"| bound: R x {args.cpus} cores | {bound:.1f} |",
            f"| the job's shard function (decode, hash, Parquet), 1 process, no Ray | "
            f"{shard_fn:.1f} |",
            f"| Ray Data job, {args.cpus} CPUs (read, decode, hash, write) | {rate:.1f} |",
            f"| **ratio job / bound** (target >= 0.8) | **{ratio:.2f}** |",
            f"| ratio job / (shard function x {args.cpus}): Ray's share | "
            f"{rate / (shard_fn * args.cpus):.2f} |",
            "",
            "Reading it: R / (shard function rate) is what the work beyond decoding costs "
            "(sha256, Arrow table, Parquet: uint8 is stored as Parquet INT32, so the pixels "
            "need dictionary encoding to stay 1 byte each, and that costs about as much as the "
            "decode). The last row is the parallel efficiency of the Ray Data job over that "
            "function; on a 2-core machine Ray's own processes (raylet, GCS, the executor in "
            "the driver) share the same cores.",
        ]
    )
    if video is not None:
        single_v, rate_v = video
        bound_v = single_v * args.cpus
        body += "\n".join(
            [
                "",
                "",
                f"{args.clips} H.264 clips (320x240, 25 fps, 3 s) -> 32 frames of 224x224 each.",
                "",
                "| measure | decoded frames/s |",
                "| --- | --- |",
                f"| PyAV decode of every frame to RGB, 1 process (R) | {single_v:.1f} |",
                f"| bound: R x {args.cpus} cores | {bound_v:.1f} |",
                f"| Ray Data video job, {args.cpus} CPUs (decode, sample, resize, write) | "
                f"{rate_v:.1f} |",
                f"| **ratio job / bound** (target >= 0.8) | **{rate_v / bound_v:.2f}** |",
            ]
        )
    print(body)
    if not args.no_record:
        print(f"recorded in {record('preprocess_throughput', body)}")


if __name__ == "__main__":
    main()
