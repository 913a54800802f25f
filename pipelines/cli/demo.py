"""``perceiver-pipeline demo``: generate a task's sample data, then run the whole chain on it.

``--task`` picks the demo: the sample dataset (real files in the real layout, a few broken on
purpose), the task's debug config (``pipelines/configs/<task>_debug.yaml``) and the
registered model's name, ``perceiver-<demo>``.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.chain import PipelineSummary, format_summary, run_pipeline
from pipelines.cli.args import add_set_arg
from pipelines.console import console


def _image(raw: Path, cfg: Any) -> str:
    from preprocessing.sample_data.image import write_imagenet_sample

    sample = write_imagenet_sample(raw, num_classes=cfg.model.num_classes)
    return (
        f"wrote {sample.total_files} images in the ImageNet layout; deliberately broken: "
        f"{', '.join(sample.broken)}"
    )


def _audio(raw: Path, cfg: Any) -> str:
    from preprocessing.sample_data.audio import write_audioset_sample

    sample = write_audioset_sample(raw)
    return f"wrote {len(sample.formats)} clips in the AudioSet layout; broken: {sample.broken}"


def _video(raw: Path, cfg: Any) -> str:
    from preprocessing.sample_data.video import write_video_sample

    sample = write_video_sample(raw, train_per_class=3, val_per_class=2)
    return f"wrote {len(sample.formats)} clips in class folders; broken: {sample.broken}"


def _kinetics(raw: Path, cfg: Any) -> str:
    from preprocessing.sample_data.video import write_kinetics_sample

    sample = write_kinetics_sample(raw)
    return f"wrote {len(sample.formats)} clips in the Kinetics layout; broken: {sample.broken}"


def _flow(raw: Path, cfg: Any) -> str:
    from preprocessing.sample_data.flow import write_flow_sample

    sample = write_flow_sample(raw, "chairs")
    return f"wrote {len(sample.rows)} FlyingChairs-layout samples; broken: {sample.broken}"


@dataclass(frozen=True)
class Demo:
    config: str  # pipelines/configs/<config>.yaml
    layout: str  # what the sample is, for the banner
    write: Callable[[Path, Any], str]


DEMOS: dict[str, Demo] = {
    "image": Demo("image_classification_debug", "an ImageNet-layout image dataset", _image),
    "audio": Demo("audio_classification_debug", "an AudioSet-layout audio dataset", _audio),
    "video": Demo("video_classification_debug", "class folders of video clips", _video),
    "kinetics": Demo("kinetics_autoencoding_debug", "a Kinetics-layout clip dataset", _kinetics),
    "flow": Demo("optical_flow_debug", "a FlyingChairs-layout optical-flow dataset", _flow),
}


def add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=list(DEMOS), default="image", help="which task (image)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder")
    add_set_arg(p, "override a key of the task's debug config, e.g. --set train.epochs=2")


def run_demo(
    task: str = "image", out: Path = Path("demo-output"), overrides: Any = ()
) -> PipelineSummary:
    from pipelines.tasks import builtin_config_path, load_config

    demo = DEMOS[task]
    out = Path(out)
    cfg = load_config(
        builtin_config_path(demo.config),
        [
            f"data.shards={out / 'shards'}",
            f"train.storage_path={out / 'ray_results'}",
            f"tracking.model_name=perceiver-{task}",
            *overrides,
        ],
    )
    raw = out / "raw"
    console().step(0, 5, f"generate {demo.layout} in {raw}")
    if raw.exists():
        shutil.rmtree(raw)
    console().say(demo.write(raw, cfg))
    summary = run_pipeline(cfg, input_dir=raw, overwrite=True)
    console().say(format_summary(summary))
    return summary


def handle(args: argparse.Namespace) -> int:
    run_demo(args.task, args.out, args.overrides)
    return 0
