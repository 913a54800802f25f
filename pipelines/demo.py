"""``perceiver-pipeline demo``: generate sample data, then run the whole chain on it."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import builtin_config_path, load_config
from pipelines.run import PipelineSummary, format_summary, run_pipeline, step
from preprocessing.sample_data.image import write_imagenet_sample


def run_demo(
    out: Path = Path("demo-output"),
    overrides: Sequence[str] = (),
    train_per_class: int = 24,
    val_per_class: int = 8,
) -> PipelineSummary:
    out = Path(out)
    cfg = load_config(
        builtin_config_path("demo"),
        [
            f"data.shards={out / 'shards'}",
            f"train.storage_path={out / 'ray_results'}",
            *overrides,
        ],
    )
    raw = out / "raw"
    step(0, 5, f"generate a sample ImageNet-layout dataset in {raw}")
    if raw.exists():
        shutil.rmtree(raw)
    sample = write_imagenet_sample(
        raw,
        num_classes=cfg.model.num_classes,
        train_per_class=train_per_class,
        val_per_class=val_per_class,
    )
    print(
        f"wrote {sample.total_files} files ({sample.files}); deliberately broken: "
        f"{', '.join(sample.broken)}",
        flush=True,
    )
    summary = run_pipeline(cfg, input_dir=raw, overwrite=True)
    print(format_summary(summary), flush=True)
    return summary
