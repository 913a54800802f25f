"""What a training checkpoint holds besides the DeepSpeed engine, and how it is restored.

A checkpoint folder (one per ``ray.train.report``; Ray Train merges every rank's files into
it) holds:

- ``checkpoint/``: the DeepSpeed engine (``engine.save_checkpoint``): the model, the optimizer
  and the learning-rate scheduler, each rank its ZeRO shard;
- ``train_state.json`` (rank 0): epochs finished, the data cursor (batches of the current epoch
  already consumed), the optimizer step, the per-epoch history;
- ``rng_rank<r>.pt``: rank r's torch, numpy and Python random states.

A resumed worker group restores all of it, so it continues with the batch after the cursor
(``pipelines.training.data``) and the same random draws (dropout, masking).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_TAG = "checkpoint"
STATE_FILE = "train_state.json"


@dataclass
class TrainState:
    epoch: int = 0  # epochs finished
    cursor: int = 0  # batches of epoch ``epoch`` already consumed
    global_step: int = 0  # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch metrics

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        return cls(**json.loads(text))


def rng_state() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(engine: Any, state: TrainState, rank: int, directory: Path) -> None:
    """Every rank: its engine shard and RNG state; rank 0 also the training state."""
    engine.save_checkpoint(str(directory), tag=CHECKPOINT_TAG)
    torch.save(rng_state(), directory / f"rng_rank{rank}.pt")
    if rank == 0:
        (directory / STATE_FILE).write_text(state.to_json())


def restore(engine: Any, directory: Path, rank: int) -> TrainState:
    """Load the engine, this rank's RNG state and the training state from ``directory``."""
    engine.load_checkpoint(str(directory), tag=CHECKPOINT_TAG)
    rng_file = directory / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return TrainState.from_json((directory / STATE_FILE).read_text())
