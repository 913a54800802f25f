"""A model that pickles as (task config, weights) and is rebuilt from them on unpickling.

Registries such as MLflow store a PyTorch model as a pickle. A pickle of the module tree
records every internal attribute, so a model logged by one version of this package breaks
when a later version adds an attribute or renames a submodule. ``PortableModel`` pickles only
its pydantic config (plain JSON-able data) and its state dict, and on unpickling runs the
task's builder again: a logged model loads under any version whose builder accepts the config
and produces the same state-dict keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from perceiver.builders import (
    audio_classifier,
    image_classifier,
    masked_lm,
    multimodal_autoencoder,
    optical_flow,
    point_cloud_classifier,
    sequence_classifier,
    video_classifier,
)
from perceiver.config import (
    AudioClassifierConfig,
    ImageClassifierConfig,
    MaskedLMConfig,
    OpticalFlowConfig,
    PointCloudClassifierConfig,
    SequenceClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.config_multimodal import MultimodalAutoencoderConfig

# task name -> (config class, builder)
TASKS: dict[str, tuple[type[BaseModel], Callable[[Any], nn.Module]]] = {
    "image_classification": (ImageClassifierConfig, image_classifier),
    "masked_language_modeling": (MaskedLMConfig, masked_lm),
    "sequence_classification": (SequenceClassifierConfig, sequence_classifier),
    "optical_flow": (OpticalFlowConfig, optical_flow),
    "audio_classification": (AudioClassifierConfig, audio_classifier),
    "video_classification": (VideoClassifierConfig, video_classifier),
    "point_cloud_classification": (PointCloudClassifierConfig, point_cloud_classifier),
    "multimodal_autoencoding": (MultimodalAutoencoderConfig, multimodal_autoencoder),
}


def config_from_dict(data: dict[str, Any]) -> BaseModel:
    """Validate a task config dict, choosing the config class by its ``task`` field."""
    task = data.get("task")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    return TASKS[task][0].model_validate(data)


def build(config: BaseModel) -> nn.Module:
    task = getattr(config, "task", None)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    return TASKS[task][1](config)


class PortableModel(nn.Module):
    """Wraps a task model built from ``config``; ``forward`` is the task model's."""

    def __init__(self, config: BaseModel, state_dict: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.config = config
        self.model = build(config)
        if state_dict is not None:
            self.model.load_state_dict(state_dict)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "training": self.training,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        PortableModel.__init__(self, config_from_dict(state["config"]), state["state_dict"])
        self.train(state["training"])
