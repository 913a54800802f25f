"""``perceiver-pipeline``: one console script, one subcommand per pipeline step.

Entrypoints stay thin: parse arguments, load and validate the config, call one function.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import ConfigError, load_config, option_help

DESCRIPTION = """\
Perceiver IO pipeline: preprocess raw media with Ray Data, train with Ray Train + DeepSpeed
ZeRO, evaluate, and register/promote models in MLflow.

Environment: RAY_ADDRESS (connect to a cluster; default: start a local one),
MLFLOW_TRACKING_URI (default: MLflow's own, a mlflow.db sqlite file in this directory),
RAY_AUTH_MODE / RAY_AUTH_TOKEN (Ray token authentication; on by default)."""


def _add_config_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--config",
        type=Path,
        required=required,
        help="pipeline YAML (see pipelines/configs/demo.yaml); keys listed below",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=3 --set deepspeed.zero_stage=3",
    )


def _config_epilog() -> str:
    return "config keys (override any with --set KEY=VALUE):\n" + option_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perceiver-pipeline",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "demo",
        help="generate sample data and run the whole chain locally",
        description="Generate a small ImageNet-layout dataset (real JPEGs, a few broken on "
        "purpose) under --out, then preprocess, train (2 CPU workers, ZeRO-2), evaluate, "
        "register and promote, and print a summary.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser(
        "sample-data",
        help="write a small dataset in a real on-disk layout",
        description="image: write a small dataset in the ImageNet folder layout with real "
        "JPEG/PNG files, including grayscale, CMYK, progressive and palette images and two "
        "broken files. audio: write a small AudioSet layout (segment CSVs, "
        "class_labels_indices.csv) with real WAV/FLAC/MP3 files, a truncated and an empty "
        "file, a CSV row without a file, a row with an unknown label and an unlisted file. "
        "video: class folders of tiny clips (H.264 in MP4 and MKV, MPEG-4 in AVI), a "
        "truncated, an empty and a text '.mp4' file. kinetics: the Kinetics-700-2020 layout "
        "(train.csv, validate.csv, <split>/<label>/<id>_<start>_<end>.mp4) with AAC audio, a "
        "clip without audio, a silent one, and broken and missing clips. autoflow: tiny "
        "optical-flow datasets (frame pairs + ground truth) in the AutoFlow, FlyingChairs, "
        "Sintel and KITTI 2015 layouts (PNG/PPM frames, .flo files, KITTI 16-bit PNG flow), "
        "with missing partners, bad/truncated .flo files, size mismatches, an interlaced "
        "16-bit PNG and unmatched files on purpose; one layout with --layout, else all four "
        "in <out>/<layout>/.",
    )
    p.add_argument(
        "--modality", choices=["image", "audio", "video", "kinetics", "autoflow"], default="image"
    )
    p.add_argument("--out", type=Path, required=True, help="folder to create")
    p.add_argument(
        "--layout",
        choices=["autoflow", "chairs", "sintel", "kitti"],
        default=None,
        help="autoflow only: write this layout in --out (default: all four in subfolders)",
    )
    p.add_argument("--classes", type=int, default=5, help="image only")
    p.add_argument("--train-per-class", type=int, default=24, help="image only")
    p.add_argument("--val-per-class", type=int, default=8, help="image only")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser(
        "preprocess",
        help="decode raw media into Parquet shards (Ray Data job)",
        description="image: decode an ImageNet-layout folder (<input>/{train,val}/<wnid>/*.JPEG) "
        "into Parquet shards of 224x224x3 uint8 images with labels. audio: decode an AudioSet "
        "layout (segment CSVs, class_labels_indices.csv, .wav/.flac/.mp3 named by YTID) into "
        "shards of mono 48 kHz float32 windows with multi-hot labels. video: decode class "
        "folders of clips (<input>/{train,val}/<label>/*.mp4|avi|mkv) into T x S x S x 3 uint8 "
        "frames sampled by presentation time. kinetics: decode the Kinetics-700-2020 layout "
        "(CSVs + <split>/<label>/<clip>.mp4) into frames at 25 fps plus the 48 kHz mono audio "
        "of the same span. autoflow: decode optical-flow samples (frame pair + ground truth; "
        "AutoFlow, FlyingChairs, Sintel or KITTI 2015 layout) into 2 x H x W x 3 uint8 frames, "
        "H x W x 2 float32 flow and an H x W valid mask (default 368 x 496: center crop, or "
        "upscale when smaller). All write a manifest.json and a quarantine/ table of inputs "
        "that failed, with reasons. Policy: docs/data-format.md.",
    )
    p.add_argument(
        "--modality", choices=["image", "audio", "video", "kinetics", "autoflow"], default="image"
    )
    p.add_argument("--input", type=Path, required=True, help="raw dataset root")
    p.add_argument("--output", type=Path, required=True, help="shards folder to write")
    p.add_argument("--resize-to", type=int, default=224, help="image: shorter side after resize")
    p.add_argument("--crop-size", type=int, default=224, help="image: center crop side")
    p.add_argument(
        "--window-samples",
        type=int,
        default=61_440,
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

    p = sub.add_parser(
        "train",
        help="train with Ray Train + DeepSpeed ZeRO, log to MLflow",
        description="Train on the shards in data.shards with TorchTrainer and DeepSpeed; logs "
        "params, per-step metrics, checkpoints and the final model to a new MLflow run.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)

    p = sub.add_parser(
        "evaluate",
        help="score a run's model on the val shards and log the metrics",
        description="Load the model logged by --run-id from MLflow, score data.val_split with "
        "Ray Data batch inference, log val_top1/val_top5/val_loss and a confusion matrix.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)
    p.add_argument("--run-id", required=True)
    p.add_argument("--split", default=None, help="manifest split (default: data.val_split)")

    p = sub.add_parser(
        "register",
        help="register a run's model in the MLflow Model Registry",
        description="Create a new version of --model-name from the model logged by --run-id.",
    )
    p.add_argument("--run-id", required=True)
    p.add_argument("--model-name", default="perceiver-image-classifier")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")

    p = sub.add_parser(
        "promote",
        help="move an alias to a version if its metric is not worse",
        description="Move --alias (default champion) to --version only if its --metric "
        "(higher is better) is >= the current holder's; the decision is tagged on the version.",
    )
    p.add_argument("--model-name", default="perceiver-image-classifier")
    p.add_argument("--version", required=True)
    p.add_argument("--alias", default="champion")
    p.add_argument("--metric", default="val_top1")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")

    p = sub.add_parser(
        "run",
        help="the whole chain: [preprocess], train, evaluate, register, promote",
        description="Run every step in order on one config; with --input, preprocess that raw "
        "folder into data.shards first.",
        epilog=_config_epilog(),
        formatter_class=fmt,
    )
    _add_config_args(p)
    p.add_argument("--input", type=Path, default=None, help="raw dataset to preprocess first")
    p.add_argument("--overwrite", action="store_true", help="replace existing shards")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ConfigError, ValueError) as exc:
        print(f"perceiver-pipeline {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "demo":
        from pipelines.demo import run_demo

        run_demo(args.out, args.overrides)
        return 0
    if cmd == "sample-data" and args.modality == "audio":
        from preprocessing.sample_data_audio import write_audioset_sample

        ads = write_audioset_sample(args.out, seed=args.seed)
        mp3 = "with" if ads.mp3 else "without (this PyAV cannot encode MP3)"
        print(
            f"wrote {len(ads.formats)} audio files {mp3} MP3 and the CSVs under {ads.root}; "
            f"{len(ads.rows)} clips should become rows; broken on purpose: {ads.broken}"
        )
        return 0
    if cmd == "sample-data" and args.modality in ("video", "kinetics"):
        from preprocessing.sample_data_video import write_kinetics_sample, write_video_sample

        vds = (
            write_video_sample(args.out)
            if args.modality == "video"
            else write_kinetics_sample(args.out)
        )
        print(
            f"wrote {len(vds.formats)} {args.modality} clips under {vds.root}; "
            f"{len(vds.rows)} should become rows; broken on purpose: {vds.broken}"
        )
        return 0
    if cmd == "sample-data" and args.modality == "autoflow":
        from preprocessing.sample_data_flow import FLOW_LAYOUTS, write_flow_sample

        layouts = [args.layout] if args.layout else list(FLOW_LAYOUTS)
        for layout in layouts:
            out = args.out if args.layout else args.out / layout
            fds = write_flow_sample(out, layout, seed=args.seed)
            print(
                f"wrote a {layout} optical-flow layout under {fds.root}; {len(fds.rows)} "
                f"samples should become rows; broken on purpose: {fds.broken}"
            )
        return 0
    if cmd == "sample-data":
        from preprocessing.sample_data import write_imagenet_sample

        ds = write_imagenet_sample(
            args.out, args.classes, args.train_per_class, args.val_per_class, args.seed
        )
        print(f"wrote {ds.total_files} files under {ds.root}; broken on purpose: {ds.broken}")
        return 0
    if cmd == "preprocess":
        from pipelines.cluster import init_ray
        from preprocessing.config import (
            AudioPreprocessConfig,
            ImagePreprocessConfig,
            KineticsPreprocessConfig,
            VideoPreprocessConfig,
        )

        given = {
            k: v
            for k, v in {
                "rows_per_shard": args.rows_per_shard,
                "num_frames": args.num_frames,
                "frame_stride": args.frame_stride,
                "size": args.size,
                "temporal_crop": args.temporal_crop,
                "target_fps": args.target_fps,
            }.items()
            if v is not None
        }
        shard_opt = {k: v for k, v in given.items() if k == "rows_per_shard"}
        flow_given = {
            k: v
            for k, v in {
                "layout": args.layout,
                "height": args.height,
                "width": args.width,
                "sintel_pass": args.sintel_pass,
                "split": args.split,
            }.items()
            if v is not None
        }
        if flow_given and args.modality != "autoflow":
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in flow_given)
            raise ValueError(f"{flags}: autoflow-only option(s)")
        if args.modality == "autoflow":
            from preprocessing.config import AutoflowPreprocessConfig
            from preprocessing.flow_job import preprocess_flow

            video_only = sorted(set(given) - set(shard_opt))
            if video_only:
                flags = ", ".join(f"--{k.replace('_', '-')}" for k in video_only)
                raise ValueError(f"{flags}: not an option of --modality autoflow")
            fcfg = AutoflowPreprocessConfig(**flow_given, **shard_opt)
            init_ray()
            m = preprocess_flow(args.input, args.output, fcfg, overwrite=args.overwrite)
        elif args.modality == "video":
            from preprocessing.video_job import preprocess_video

            if "target_fps" in given:
                raise ValueError("--target-fps applies to --modality kinetics only")
            vcfg = VideoPreprocessConfig(**given)
            init_ray()
            m = preprocess_video(args.input, args.output, vcfg, overwrite=args.overwrite)
        elif args.modality == "kinetics":
            from preprocessing.video_job import preprocess_kinetics

            kcfg = KineticsPreprocessConfig(**given)
            init_ray()
            m = preprocess_kinetics(args.input, args.output, kcfg, overwrite=args.overwrite)
        elif args.modality == "audio":
            from preprocessing.audio_job import preprocess_audio

            acfg = AudioPreprocessConfig(window_samples=args.window_samples, **shard_opt)
            init_ray()
            m = preprocess_audio(args.input, args.output, acfg, overwrite=args.overwrite)
        else:
            from preprocessing.job import preprocess_images

            pcfg = ImagePreprocessConfig(
                resize_to=args.resize_to, crop_size=args.crop_size, **shard_opt
            )
            init_ray()
            m = preprocess_images(args.input, args.output, pcfg, overwrite=args.overwrite)
        print(
            json.dumps(
                {
                    "output": str(args.output),
                    "inputs_seen": m.inputs_seen,
                    "rows_written": m.rows_written,
                    "quarantined": m.quarantined,
                    "splits": {s: e.rows for s, e in m.splits.items()},
                    "row_flags": m.row_flags,
                },
                indent=2,
            )
        )
        return 0
    if cmd in ("register", "promote"):
        from pipelines.registry import promote, register
        from pipelines.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(args.tracking_uri)
        if cmd == "register":
            version = register(uri, args.run_id, args.model_name)
            print(f"registered {args.model_name} version {version} from run {args.run_id}")
        else:
            p = promote(uri, args.model_name, args.version, args.alias, args.metric)
            verdict = "moved to" if p.promoted else "stays on"
            print(f"'{p.alias}' {verdict} version {p.holder}: {p.reason}")
        return 0

    cfg = load_config(args.config, args.overrides)
    from pipelines.cluster import init_ray
    from pipelines.tracking import end_run, resolve_tracking_uri, start_run

    init_ray()
    uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    if cmd == "train":
        from pipelines.train import train

        run_id = start_run(cfg, uri, run_name=cfg.train.run_name)
        try:
            outcome = train(cfg, tracking_uri=uri, run_id=run_id)
        except BaseException:
            end_run(uri, run_id, "FAILED")
            raise
        end_run(uri, run_id)
        print(
            json.dumps(
                {"run_id": run_id, "checkpoint": outcome.checkpoint_path, **outcome.metrics},
                indent=2,
                default=str,
            )
        )
        return 0
    if cmd == "evaluate":
        from pipelines.evaluate import evaluate

        result = evaluate(cfg, args.run_id, uri, args.split)
        print(json.dumps(result.metrics, indent=2))
        return 0
    if cmd == "run":
        from pipelines.run import format_summary, run_pipeline

        print(format_summary(run_pipeline(cfg, args.input, overwrite=args.overwrite)))
        return 0
    raise ValueError(f"unknown command {cmd!r}")


if __name__ == "__main__":
    raise SystemExit(main())
