"""Small configs for pipeline tests (real engines, tiny models, few steps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipelines.tasks import AnyPipelineConfig, builtin_config_path, load_config

TINY_MODEL: dict[str, Any] = {
    "image_shape": [224, 224, 3],
    "num_frequency_bands": 6,
    "encoder": {
        "num_latents": 16,
        "num_latent_channels": 32,
        "num_self_attention_heads": 2,
        "num_self_attention_layers_per_block": 1,
        "num_self_attention_blocks": 2,
    },
}


def tiny_config(
    shards: Path, storage: Path, num_classes: int, **sections: Any
) -> AnyPipelineConfig:
    """A tiny image classifier on 224x224 shards (``toy_shards``)."""
    tree: dict[str, Any] = {
        "task": "image_classification",
        "model": {**TINY_MODEL, "num_classes": num_classes},
        "data": {"shards": str(shards)},
        "optimizer": {"lr": 0.003, "warmup_steps": 0},
        "deepspeed": {"micro_batch_size": 4},
        "augment": {"random_crop": False},
        "train": {
            "num_workers": 2,
            "cpus_per_worker": 0.5,
            "epochs": 3,
            "storage_path": str(storage),
            "checkpoints_to_keep": 10,
        },
    }
    for name, values in sections.items():
        tree[name] = {**tree.get(name, {}), **values}
    return load_config(base=tree)


def debug_config(task: str, shards: Path, storage: Path, *overrides: str) -> AnyPipelineConfig:
    """A task's shipped debug config on test shards, with ``KEY=VALUE`` overrides."""
    return load_config(
        builtin_config_path(f"{task}_debug"),
        [f"data.shards={shards}", f"train.storage_path={storage}", *overrides],
    )


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``perceiver-pipeline ARGS`` as a user runs it: the console script in a subprocess,
    with this environment plus ``env``, less the variables in ``drop``."""
    script = Path(sys.executable).parent / "perceiver-pipeline"
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    return subprocess.run(
        [str(script), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
