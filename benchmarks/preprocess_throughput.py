"""Throughput of the Ray Data preprocessing jobs against single-process decoding bounds.

Images: images/s of the image job (``preprocess_images``) against the single-core rate R of
a plain Pillow decode + resize + crop of the same files in one process (``Image.open``,
``convert("RGB")``, ``resize(BILINEAR)`` of the shorter side to 224, center crop to 224x224,
``numpy.asarray``), times N cores. The job runs on a fresh local Ray cluster with N CPUs and
is timed end to end (layout scan, Ray Data, Parquet shards, manifest; not ``ray.init``)
after a warm-up run. This machine's speed drifts by tens of percent from minute to minute,
so R and the job are measured in ``--rounds`` back-to-back pairs and each pair gives a ratio
job / (N x R); the median and range are reported. Target: >= 0.8. P, the baseline's own
code in N plain processes without Ray, shows how far N cores scale for that work here.

Also shown, to see where time goes: the job's own decode policy in one process
(``preprocessing.decode.image.decode_image``: libjpeg-turbo straight to numpy, torch's uint8
antialiased resize) and its whole per-shard function (decode, sha256, Arrow, Parquet) in one
process without Ray.

Video: decoded frames/s of the video job (``preprocess_video``: PyAV decode of every frame,
pts order, 32 frames sampled, resize + crop, Parquet) against PyAV decoding every frame of
the same clips to RGB arrays (``to_ndarray("rgb24")``) in one process, times N. Also shown:
PyAV decoding every frame without the RGB conversion. The clips are Kinetics-like: 10 s of
H.264 at 25 fps, 640x360 (YouTube 360p), a textured scene panning with noise.

    .venv/bin/python -m benchmarks.preprocess_throughput --images 4000 --clips 24 --cpus 2
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

CROP = 224


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


def plain_pillow(path: Path) -> np.ndarray:
    """The baseline: plain Pillow decode, shorter side to 224 (BILINEAR), center crop."""
    img = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
    w, h = img.size
    nw, nh = (CROP, int(CROP * h / w)) if w <= h else (int(CROP * w / h), CROP)
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = round((nh - CROP) / 2), round((nw - CROP) / 2)
    return np.asarray(img.crop((left, top, left + CROP, top + CROP)))


def policy(path: Path) -> np.ndarray:
    from preprocessing.decode.image import decode_image

    return decode_image(path.read_bytes())


def single_rate(paths: list[Path], fn, repeats: int = 2) -> float:  # type: ignore[no-untyped-def]
    """Single-process images/s of ``fn`` over ``paths`` (best of ``repeats``)."""
    fn(paths[0])  # imports
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for p in paths:
            fn(p)
        best = max(best, len(paths) / (time.perf_counter() - start))
    return best


def shard_function_rate(raw: Path, out: Path, rows_per_shard: int) -> float:
    """Images/s of the job's own per-shard function (decode, hash, Parquet write) run
    sequentially in this process, without Ray: separates Ray's overhead from the work."""
    import torch

    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.engine.shard_task import plan_shards, write_shard
    from preprocessing.layouts.imagenet import scan_imagenet
    from preprocessing.modalities.image import image_spec

    torch.set_num_threads(1)  # as in a Ray task with 1 CPU (OMP_NUM_THREADS=1)
    scan = scan_imagenet(raw)
    spec = image_spec(ImagePreprocessConfig(rows_per_shard=rows_per_shard))
    tasks = plan_shards(scan.files, rows_per_shard, 1)
    write_shard(tasks[0], str(raw), str(out / "warm"), spec)  # imports, codec set-up
    start = time.perf_counter()
    for task in tasks:
        write_shard(task, str(raw), str(out / "seq"), spec)
    return len(scan.files) / (time.perf_counter() - start)


def shard_write_times(paths: list[Path], out: Path, rows: int) -> dict[str, float]:
    """ms per image to write one shard of ``rows`` decoded images to a Parquet file:
    pyarrow's ``pq.write_table`` (Arrow's nested-column path) against the job's writer
    (``preprocessing.parquet.tensor_parquet``), same options, same table; best of 3 each."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from preprocessing.decode.image import decode_image
    from preprocessing.parquet.tensor_parquet import (
        parquet_write_options,
        tensor_column,
        write_table,
    )

    chosen = paths[:rows]
    datas = [p.read_bytes() for p in chosen]
    table = pa.table(
        {
            "image": tensor_column(np.stack([decode_image(d) for d in datas])),
            "label": pa.array(range(len(datas))),
            "source": pa.array([str(p) for p in chosen]),
            "key": pa.array([hashlib.sha256(d).hexdigest() for d in datas]),
        }
    )

    def best(write) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            write(out)
            times.append(time.perf_counter() - start)
        return min(times) / len(datas) * 1e3

    out.parent.mkdir(parents=True, exist_ok=True)
    options = parquet_write_options(table.schema)
    return {
        "pyarrow": best(lambda path: pq.write_table(table, path, **options)),
        "ours": best(lambda path: write_table(table, path)),
    }


def image_job(raw: Path, out: Path, rows_per_shard: int) -> float:
    """Images/s of one end-to-end run of the image job into the fresh folder ``out``."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images

    n = sum(1 for _ in raw.rglob("*.JPEG"))
    start = time.perf_counter()
    m = preprocess_images(raw, out, ImagePreprocessConfig(rows_per_shard=rows_per_shard))
    elapsed = time.perf_counter() - start
    if m.rows_written != n:
        raise RuntimeError(f"job wrote {m.rows_written} rows for {n} images")
    return n / elapsed


def encode_scene_clip(size: tuple[int, int], fps: int, seconds: int, seed: int) -> bytes:
    """H.264 MP4 of a textured scene panning across the frame, with per-frame noise."""
    import av

    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 16 + 8, w // 16 + 8, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((w + 128, h + 128), Image.BICUBIC))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1  # one slice per frame: single-threaded decode
        stream.options = {"preset": "veryfast", "crf": "20"}
        for i in range(fps * seconds):
            dx, dy = (2 * i) % 128, i % 128
            frame = texture[dy : dy + h, dx : dx + w].astype(np.int16)
            frame += rng.integers(-6, 7, (h, w, 3)).astype(np.int16)
            vf = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), "rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def write_clips(
    root: Path, count: int, copies: int, size: tuple[int, int], fps: int, seconds: int
) -> tuple[list[Path], float, float]:
    """``count`` distinct clips, each written ``copies`` times (distinct files) in the
    class-folder layout; returns the paths, the total frame count and the mean kbit/s."""
    paths: list[Path] = []
    kbps = []
    for i in range(count):
        data = encode_scene_clip(size, fps, seconds, seed=i)
        kbps.append(len(data) * 8 / seconds / 1000)
        for c in range(copies):
            path = root / "train" / f"class{i % 4}" / f"clip{i}_{c}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
    return paths, len(paths) * fps * seconds, float(np.mean(kbps))


def decode_frames(path: Path, rgb: bool) -> int:
    """PyAV-decode every frame of ``path`` (each to an RGB array if ``rgb``); the count."""
    import av

    frames = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if rgb:
                frame.to_ndarray(format="rgb24")
            frames += 1
    return frames


def pyav_frame_rate(paths: list[Path], rgb: bool) -> float:
    """Single-process decoded frames/s: PyAV decode of every frame (to an RGB array)."""
    start = time.perf_counter()
    frames = sum(decode_frames(p, rgb) for p in paths)
    return frames / (time.perf_counter() - start)


def _timed_pillow(paths: list[Path]) -> tuple[int, float, float]:
    plain_pillow(paths[0])  # imports, before the clock starts
    start = time.time()
    for p in paths:
        plain_pillow(p)
    return len(paths), start, time.time()


def _timed_pyav(paths: list[Path]) -> tuple[int, float, float]:
    decode_frames(paths[0], rgb=True)  # imports, codec set-up
    start = time.time()
    frames = sum(decode_frames(p, rgb=True) for p in paths)
    return frames, start, time.time()


def parallel_rate(fn, paths: list[Path], processes: int) -> float:  # type: ignore[no-untyped-def]
    """Items/s of ``fn`` run on ``paths`` split over ``processes`` plain OS processes (no
    Ray): what this machine's cores give the baseline's own work when run side by side."""
    import multiprocessing

    chunks = [paths[i::processes] for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(fn, chunks)
    items = sum(n for n, _, _ in results)
    return items / (max(end for _, _, end in results) - min(start for _, start, _ in results))


def video_job(raw: Path, out: Path, frames: float, rows_per_shard: int) -> float:
    """Decoded frames/s of one end-to-end run of the video job into the fresh folder ``out``."""
    from preprocessing.config import VideoPreprocessConfig
    from preprocessing.modalities.video import preprocess_video

    start = time.perf_counter()
    m = preprocess_video(raw, out, VideoPreprocessConfig(rows_per_shard=rows_per_shard))
    elapsed = time.perf_counter() - start
    if m.quarantined:
        raise RuntimeError(f"video job quarantined {m.quarantined} clips")
    return frames / elapsed


def alternate(rounds: int, baseline, job) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """``rounds`` rounds of (single-process baseline rate, job rate), measured back to back:
    this machine's speed drifts by tens of percent from minute to minute, so each round's
    ratio compares two runs made under the same conditions."""
    out: dict[str, list[float]] = {"single": [], "job": []}
    for r in range(rounds):
        out["single"].append(baseline())
        out["job"].append(job(r))
    return out


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """'median (min-max)' of ``values``."""
    lo, mid, hi = min(values), float(np.median(values)), max(values)
    return f"{fmt.format(mid)} ({fmt.format(lo)}-{fmt.format(hi)})"


def image_baselines(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    paths = write_images(tmp / "raw", args.images)
    return {
        "plain": single_rate(paths, plain_pillow),
        "plain_n": max(parallel_rate(_timed_pillow, paths, args.cpus) for _ in range(2)),
        "ours": single_rate(paths, policy),
        "shard_fn": shard_function_rate(tmp / "raw", tmp / "seq", args.rows_per_shard),
        "write": shard_write_times(paths, tmp / "write" / "shard.parquet", args.rows_per_shard),
    }


def ratios(args: argparse.Namespace, rounds: dict[str, list[float]]) -> list[float]:
    """Each round's job rate / (its single-process rate x N cores)."""
    return [j / (r * args.cpus) for r, j in zip(rounds["single"], rounds["job"], strict=True)]


def image_table(args: argparse.Namespace, m: dict[str, float], rounds: dict) -> str:
    job = float(np.median(rounds["job"]))
    n = args.cpus
    return "\n".join(
        [
            "## Preprocessing throughput (`benchmarks/preprocess_throughput.py`)",
            "",
            f"{args.images} JPEGs (500x375 / 375x500, quality 90) -> 224x224x3 shards of "
            f"{args.rows_per_shard} rows. Rates with a range are the median (min-max) of "
            f"{args.rounds} rounds, each a single-process baseline run then a job run.",
            "",
            "| measure | images/s |",
            "| --- | --- |",
            f"| plain Pillow decode + resize + crop, 1 process (R) | {spread(rounds['single'])} |",
            f"| plain Pillow in {n} processes side by side, no Ray (P; R was "
            f"{m['plain']:.1f} just before) | {m['plain_n']:.1f} |",
            f"| the job's decode policy (`decode_image`), 1 process | {m['ours']:.1f} |",
            f"| the job's shard function (decode, hash, Arrow, Parquet), 1 process, no Ray | "
            f"{m['shard_fn']:.1f} |",
            f"| writing a {args.rows_per_shard}-image shard: pyarrow's `write_table` / the "
            f"job's writer, ms per image | {m['write']['pyarrow']:.2f} / {m['write']['ours']:.2f}"
            f" ({m['write']['pyarrow'] / m['write']['ours']:.1f}x) |",
            f"| Ray Data job, {n} CPUs, end to end (scan, decode, hash, write, manifest) "
            f"| {spread(rounds['job'])} |",
            f"| **ratio job / (R x {n})**, per round (target >= 0.8) | "
            f"**{spread(ratios(args, rounds), '{:.2f}')}** |",
            f"| ratio P / (R x {n}): how far {n} cores scale for the baseline's work here | "
            f"{m['plain_n'] / (m['plain'] * n):.2f} |",
            f"| ratio job / P | {job / m['plain_n']:.2f} |",
            f"| ratio job / (shard function x {n}) | {job / (m['shard_fn'] * n):.2f} |",
        ]
    )


CLIP_SIZE, CLIP_FPS, CLIP_SECONDS = (640, 360), 25, 10


def video_baselines(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    clips, frames, kbps = write_clips(
        tmp / "clips", args.clips, args.clip_copies, CLIP_SIZE, CLIP_FPS, CLIP_SECONDS
    )
    distinct = clips[:: args.clip_copies]
    return {
        "frames": frames,
        "kbps": kbps,
        "rgb": max(pyav_frame_rate(distinct, rgb=True) for _ in range(2)),
        "rgb_n": max(parallel_rate(_timed_pyav, distinct, args.cpus) for _ in range(2)),
        "yuv": pyav_frame_rate(distinct, rgb=False),
    }


def video_table(args: argparse.Namespace, m: dict[str, float], rounds: dict) -> str:
    job = float(np.median(rounds["job"]))
    n = args.cpus
    w, h = CLIP_SIZE
    return "\n".join(
        [
            f"{args.clips * args.clip_copies} H.264 clips ({args.clips} distinct, each stored "
            f"{args.clip_copies} times; {w}x{h}, {CLIP_FPS} fps, {CLIP_SECONDS} s, "
            f"{m['kbps']:.0f} kbit/s) -> 32 frames of 224x224 each, shards of "
            f"{args.video_rows_per_shard} clips; rounds as above.",
            "",
            "| measure | decoded frames/s |",
            "| --- | --- |",
            f"| PyAV decode of every frame to RGB, 1 process (R) | {spread(rounds['single'])} |",
            f"| the same in {n} processes side by side, no Ray (P; R was {m['rgb']:.1f} just "
            f"before) | {m['rgb_n']:.1f} |",
            f"| PyAV decode of every frame, no RGB conversion, 1 process | {m['yuv']:.1f} |",
            f"| Ray Data video job, {n} CPUs, end to end | {spread(rounds['job'])} |",
            f"| **ratio job / (R x {n})**, per round (target >= 0.8) | "
            f"**{spread(ratios(args, rounds), '{:.2f}')}** |",
            f"| ratio P / (R x {n}) | {m['rgb_n'] / (m['rgb'] * n):.2f} |",
            f"| ratio job / P | {job / m['rgb_n']:.2f} |",
            f"| ratio job / (decode without RGB x {n}) | {job / (m['yuv'] * n):.2f} |",
        ]
    )


READING = (
    "Reading it. The target compares the job with R x N, which assumes N processes of the "
    "baseline run N times as fast as one. P measures that assumption on this machine: the "
    "baseline's own code in N plain OS processes, no Ray. Where P / bound is well below 1, "
    "the cores do not scale for this work (decoders share caches and memory traffic, and "
    "this VM's page faults are slow) and no job doing the same work can reach the target; "
    "job / P is then the share of what the machine gives this work that the Ray Data job "
    "gets. Per image the job beats plain Pillow: it decodes JPEGs with libjpeg-turbo "
    "straight into numpy (Pillow's decoder, the same pixels), resizes with torch's uint8 "
    "antialiased kernel instead of Pillow's resize (which costs more than the decode) and "
    "writes the resized HWC image in place. That pays for the rest of a row: sha256 of the "
    "file and the Parquet write. Parquet has no 8-bit type, so pixels are INT32 values, "
    "byte-stream-split and zstd-1 compressed back to about a byte each; Arrow's writer "
    "computes a level for every value and widens every pixel first, so the job writes the "
    "tensor pages itself, each compressed as soon as its image is decoded (the writer row "
    "above). The video job "
    "decodes every frame (the pts order needs them all) but converts only the 32 it keeps "
    "to RGB, so it can beat a decoder that converts every frame; the last row compares it "
    "with decoding alone. Ray's own processes (raylet, GCS, the Ray Data executor in the "
    "driver) share the same cores. The job turns off Ray Data's per-operator resource "
    "reservation for its one map (whose outputs are one-line summaries): it held the second "
    "task back by about a task's length and each next task by 0.1-0.2 s."
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--rows-per-shard", type=int, default=256, help="image shard rows")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/job rounds")
    parser.add_argument("--clips", type=int, default=24, help="distinct clips (0 = skip video)")
    parser.add_argument("--clip-copies", type=int, default=4, help="files per distinct clip")
    parser.add_argument("--video-rows-per-shard", type=int, default=8)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    import ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-preprocess-"))
    try:
        # Single-process baselines first, with no Ray process on the machine.
        images = image_baselines(args, tmp)
        video = video_baselines(args, tmp) if args.clips else None
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = False
        raw, paths = tmp / "raw", sorted((tmp / "raw").rglob("*.JPEG"))
        image_job(raw, tmp / "out-warmup", args.rows_per_shard)  # worker start-up, imports
        rounds = alternate(
            args.rounds,
            lambda: single_rate(paths, plain_pillow, repeats=1),
            lambda r: image_job(raw, tmp / f"out{r}", args.rows_per_shard),
        )
        body = image_table(args, images, rounds)
        if video is not None:
            clips = tmp / "clips"
            distinct = sorted(clips.rglob("*_0.mp4"))
            frames = video["frames"]
            video_job(clips, tmp / "vout-warmup", frames, args.video_rows_per_shard)
            vrounds = alternate(
                args.rounds,
                lambda: pyav_frame_rate(distinct, rgb=True),
                lambda r: video_job(clips, tmp / f"vout{r}", frames, args.video_rows_per_shard),
            )
            body += "\n\n" + video_table(args, video, vrounds)
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    body += "\n\n" + READING
    print(body)
    if not args.no_record:
        print(f"recorded in {record('preprocess_throughput', body)}")


if __name__ == "__main__":
    main()
