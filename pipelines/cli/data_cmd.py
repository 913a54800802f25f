"""The data commands, ``sample-data`` and ``preprocess``: their arguments and handlers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from pipelines.console import console
from preprocessing.modalities import MODALITIES

# ``preprocess`` options, by argparse dest; each is a field of some modality's config.
PREPROCESS_OPTIONS = (
    "resize_to",
    "crop_size",
    "window_samples",
    "num_frames",
    "frame_stride",
    "target_fps",
    "size",
    "temporal_crop",
    "val_fraction",
    "split_number",
    "layout",
    "height",
    "width",
    "sintel_pass",
    "split",
    "rows_per_shard",
)


SAMPLE_DATA_HELP = "write a small dataset in a real on-disk layout"
SAMPLE_DATA_DESCRIPTION = (
    "image: write a small dataset in the ImageNet folder layout with real "
    "JPEG/PNG files, including grayscale, CMYK, progressive and palette images and two "
    "broken files. audio: write a small AudioSet layout (segment CSVs, "
    "class_labels_indices.csv) with real WAV/FLAC/MP3 files, a truncated and an empty "
    "file, a CSV row without a file, a row with an unknown label and an unlisted file. "
    "video: class folders of tiny clips (H.264 in MP4 and MKV, MPEG-4 in AVI), a "
    "truncated, an empty and a text '.mp4' file in split folders, or with --layout "
    "ucf101|class_folders UCF-101's plain class folders (AVI) with or without its split "
    "lists, a clip no list names, a listed clip that is missing and a stray clip. "
    "kinetics: the Kinetics-700-2020 layout (train.csv, validate.csv, "
    "<split>/<label>/<id>_<start>_<end>.mp4) with AAC audio, a "
    "clip without audio, a silent one, and broken and missing clips. autoflow: tiny "
    "optical-flow datasets (frame pairs + ground truth) in the AutoFlow, FlyingChairs, "
    "Sintel and KITTI 2015 layouts (PNG/PPM frames, .flo files, KITTI 16-bit PNG flow), "
    "with missing partners, bad/truncated .flo files, size mismatches, an interlaced "
    "16-bit PNG and unmatched files on purpose; one layout with --layout, else all four "
    "in <out>/<layout>/."
)


PREPROCESS_HELP = "decode raw media into Parquet shards (Ray Data job)"
PREPROCESS_DESCRIPTION = (
    "image: decode an ImageNet-layout folder (<input>/{train,val}/<wnid>/*.JPEG) "
    "into Parquet shards of 224x224x3 uint8 images with labels. audio: decode an AudioSet "
    "layout (segment CSVs, class_labels_indices.csv, .wav/.flac/.mp3 named by YTID) into "
    "shards of mono 48 kHz float32 windows with multi-hot labels. video: decode class "
    "folders of clips (<input>/{train,val}/<label>/*.mp4|avi|mkv, or <input>/<label>/* "
    "as UCF-101 and HMDB-51 ship, split by their official lists when present, else by "
    "--val-fraction) into T x S x S x 3 uint8 frames sampled by presentation time. "
    "kinetics: decode the Kinetics-700-2020 layout (CSVs + <split>/<label>/<clip>.mp4) "
    "into frames at 25 fps plus the 48 kHz mono audio "
    "of the same span. autoflow: decode optical-flow samples (frame pair + ground truth; "
    "AutoFlow, FlyingChairs, Sintel or KITTI 2015 layout) into 2 x H x W x 3 uint8 frames, "
    "H x W x 2 float32 flow and an H x W valid mask (default 368 x 496: center crop, or "
    "upscale when smaller). All write a manifest.json and a quarantine/ table of inputs "
    "that failed, with reasons. Policy: docs/data-format.md."
)


def add_sample_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modality", choices=sorted(MODALITIES), default="image")
    p.add_argument("--out", type=Path, required=True, help="folder to create")
    p.add_argument(
        "--layout",
        choices=["autoflow", "chairs", "sintel", "kitti", "ucf101", "class_folders"],
        default=None,
        help="autoflow: write this layout in --out (default: all four in subfolders); video: "
        "ucf101 (class folders + split lists) or class_folders (no lists) instead of split "
        "folders",
    )
    p.add_argument("--classes", type=int, default=5, help="image only")
    p.add_argument("--train-per-class", type=int, default=24, help="image only")
    p.add_argument("--val-per-class", type=int, default=8, help="image only")
    p.add_argument("--seed", type=int, default=0)


def add_preprocess_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modality", choices=sorted(MODALITIES), default="image")
    p.add_argument("--input", type=Path, required=True, help="raw dataset root")
    p.add_argument("--output", type=Path, required=True, help="shards folder to write")
    p.add_argument(
        "--resize-to", type=int, default=None, help="image: shorter side after resize (224)"
    )
    p.add_argument("--crop-size", type=int, default=None, help="image: center crop side (224)")
    p.add_argument(
        "--window-samples",
        type=int,
        default=None,
        help="audio: samples per row at 48 kHz (default 61440 = 1.28 s)",
    )
    p.add_argument(
        "--num-frames", type=int, default=None, help="video/kinetics: frames per row (32/16)"
    )
    p.add_argument(
        "--frame-stride",
        type=int,
        default=None,
        help="video: take every n-th frame of the clip (2); kinetics: every n-th frame at "
        "--target-fps (1)",
    )
    p.add_argument(
        "--target-fps", type=int, default=None, help="kinetics: frame sampling rate (25)"
    )
    p.add_argument("--size", type=int, default=None, help="video/kinetics: square frame side (224)")
    p.add_argument(
        "--temporal-crop",
        choices=["center", "start"],
        default=None,
        help="video/kinetics: which span of a longer clip to keep (center)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="video, class folders without split lists: share of clips put in val, by a "
        "stable hash of each clip's path (0.2)",
    )
    p.add_argument(
        "--split-number",
        type=int,
        default=None,
        help="video, class folders with official split lists (UCF-101 trainlist0N.txt/"
        "testlist0N.txt, HMDB-51 <class>_test_splitN.txt): which split N to follow (1)",
    )
    p.add_argument(
        "--layout",
        choices=["auto", "autoflow", "chairs", "sintel", "kitti"],
        default=None,
        help="autoflow: input layout (default auto: detected, an error when ambiguous)",
    )
    p.add_argument("--height", type=int, default=None, help="autoflow: output height (368)")
    p.add_argument("--width", type=int, default=None, help="autoflow: output width (496)")
    p.add_argument(
        "--sintel-pass",
        choices=["clean", "final", "both"],
        default=None,
        help="autoflow, sintel layout: render pass(es) (both: splits val_clean, val_final)",
    )
    p.add_argument(
        "--split",
        choices=["train", "val"],
        default=None,
        help="autoflow: put every sample in this split (default: AutoFlow/Chairs train or "
        "FlyingChairs_train_val.txt, Sintel/KITTI val)",
    )
    p.add_argument(
        "--rows-per-shard",
        type=int,
        default=None,
        help="default: 256 (image, audio), 32 (video, autoflow), 64 (kinetics)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild the output from scratch (default: add only inputs not yet processed)",
    )


def _audio(args: argparse.Namespace) -> str:
    from preprocessing.sample_data.audio import write_audioset_sample

    ads = write_audioset_sample(args.out, seed=args.seed)
    mp3 = "with" if ads.mp3 else "without (this PyAV cannot encode MP3)"
    return (
        f"wrote {len(ads.formats)} audio files {mp3} MP3 and the CSVs under {ads.root}; "
        f"{len(ads.rows)} clips should become rows; broken on purpose: {ads.broken}"
    )


def _video(args: argparse.Namespace) -> str:
    from preprocessing.sample_data.video import write_ucf_sample, write_video_sample

    if args.layout in ("ucf101", "class_folders"):
        vds = write_ucf_sample(args.out, split_lists=args.layout == "ucf101")
    else:
        vds = write_video_sample(args.out)
    return (
        f"wrote {len(vds.formats)} video clips under {vds.root}; {len(vds.rows)} should "
        f"become rows; broken on purpose: {vds.broken}"
    )


def _kinetics(args: argparse.Namespace) -> str:
    from preprocessing.sample_data.video import write_kinetics_sample

    kds = write_kinetics_sample(args.out)
    return (
        f"wrote {len(kds.formats)} kinetics clips under {kds.root}; {len(kds.rows)} should "
        f"become rows; broken on purpose: {kds.broken}"
    )


def _autoflow(args: argparse.Namespace) -> str:
    from preprocessing.sample_data.flow import FLOW_LAYOUTS, write_flow_sample

    lines = []
    for layout in [args.layout] if args.layout else list(FLOW_LAYOUTS):
        fds = write_flow_sample(args.out if args.layout else args.out / layout, layout, args.seed)
        lines.append(
            f"wrote a {layout} optical-flow layout under {fds.root}; {len(fds.rows)} samples "
            f"should become rows; broken on purpose: {fds.broken}"
        )
    return "\n".join(lines)


def _image(args: argparse.Namespace) -> str:
    from preprocessing.sample_data.image import write_imagenet_sample

    ds = write_imagenet_sample(
        args.out, args.classes, args.train_per_class, args.val_per_class, args.seed
    )
    return f"wrote {ds.total_files} files under {ds.root}; broken on purpose: {ds.broken}"


SAMPLE_WRITERS: dict[str, Callable[[argparse.Namespace], str]] = {
    "image": _image,
    "audio": _audio,
    "video": _video,
    "kinetics": _kinetics,
    "autoflow": _autoflow,
}


def run_sample_data(args: argparse.Namespace) -> int:
    console().say(SAMPLE_WRITERS[args.modality](args))
    return 0


def run_preprocess(args: argparse.Namespace) -> int:
    from pipelines.chain import preprocess
    from pipelines.cluster import init_ray
    from preprocessing.modalities import modality_config

    options = {k: getattr(args, k) for k in PREPROCESS_OPTIONS if getattr(args, k) is not None}
    modality_config(args.modality, options)  # fail on bad options before starting Ray
    init_ray()
    m = preprocess(args.modality, args.input, args.output, options, args.overwrite)
    summary = {
        "output": str(args.output),
        "inputs_seen": m.inputs_seen,
        "rows_written": m.rows_written,
        "quarantined": m.quarantined,
        "splits": {s: e.rows for s, e in m.splits.items()},
        "row_flags": m.row_flags,
    }
    console().say(json.dumps(summary, indent=2))
    return 0
