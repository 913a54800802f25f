"""Shards of every task's modality, written once per session from the demos' sample data
with each task's debug preprocessing (real media, real Ray Data job)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

# task -> the demo (``perceiver-pipeline demo --task``) whose sample data it trains on
DEMO_OF = {
    "image_classification": "image",
    "audio_classification": "audio",
    "video_classification": "video",
    "kinetics_autoencoding": "kinetics",
    "optical_flow": "flow",
}


@dataclass
class TaskShards:
    task: str
    raw: Path
    shards: Path


@pytest.fixture(scope="session")
def task_shards(tmp_path_factory: pytest.TempPathFactory, ray_cluster: None):
    """task -> its shards, built on first use."""
    from pipelines.cli.demo import DEMOS
    from pipelines.tasks import builtin_config_path, load_config
    from preprocessing.modalities import run_modality

    built: dict[str, TaskShards] = {}

    def get(task: str) -> TaskShards:
        if task not in built:
            root = tmp_path_factory.mktemp(task)
            cfg = load_config(builtin_config_path(f"{task}_debug"))
            demo = DEMOS[DEMO_OF[task]]
            demo.write(root / "raw", cfg)
            options = cfg.preprocess.model_dump(exclude={"modality"})
            run_modality(cfg.preprocess.modality, root / "raw", root / "shards", options)
            built[task] = TaskShards(task, root / "raw", root / "shards")
        return built[task]

    return get
