"""Perceiver IO in plain PyTorch: configs, building blocks, adapters, decoders, task builders.

Layers, from the bottom: ``config`` (pydantic task configs), ``modules`` (attention, position
encodings, encoder, model compositions), ``adapters`` (each modality's raw tensor -> input
positions) and ``decoders`` (output queries, heads, postprocessors), ``builders`` (a task's
config -> its model, every block built and injected there), ``portable`` (registry-safe
pickling) and ``convert`` (Hugging Face checkpoints). This package never imports Ray,
DeepSpeed or MLflow; ``pipelines`` wraps it from outside.

The names below are imported on first use, so ``import perceiver`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ImageClassifierConfig": "perceiver.config",
    "load_task_config": "perceiver.config",
    "build": "perceiver.builders",
    "image_classifier": "perceiver.builders",
    "PerceiverEncoder": "perceiver.modules.encoder",
    "IterativePerceiverEncoder": "perceiver.modules.encoder_iterative",
    "PerceiverIO": "perceiver.modules.perceiver_io",
    "PortableModel": "perceiver.portable",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'perceiver' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
