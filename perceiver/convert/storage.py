"""Store a conversion as ``config.json`` (our task config) + ``model.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from perceiver.config import AnyTaskConfig, task_config
from perceiver.portable import PortableModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _safetensors_torch() -> Any:
    try:
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError(
            "reading or writing model.safetensors needs the safetensors package: "
            "pip install '.[hf]' (or pip install safetensors)"
        ) from exc
    return safetensors.torch


def save_converted(out_dir: str | Path, config: AnyTaskConfig, model: nn.Module) -> None:
    """Write ``config.json`` (the task config) and ``model.safetensors`` into ``out_dir``.

    Tied weights (the masked-LM head shares the token embedding) are stored once.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    _safetensors_torch().save_model(model, str(out / WEIGHTS_FILE))


def load_converted(out_dir: str | Path) -> PortableModel:
    """The model that ``save_converted`` (or ``perceiver-pipeline convert``) wrote, in eval mode.

    Needs ``safetensors``, not ``transformers``. The model is built from ``config.json`` by
    the task's builder and is float32 on the CPU.
    """
    out = Path(out_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (out / name).is_file():
            raise ValueError(f"{out / name} not found: not a converted model folder")
    config = task_config(json.loads((out / CONFIG_FILE).read_text()))
    model = PortableModel(config)
    missing, unexpected = _safetensors_torch().load_model(
        model.model, str(out / WEIGHTS_FILE), strict=False
    )
    if missing or unexpected:
        raise ValueError(
            f"{out / WEIGHTS_FILE} does not match {out / CONFIG_FILE}: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return model.eval()
