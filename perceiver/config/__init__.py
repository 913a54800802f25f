"""Pydantic configs of the model library: one per task, their shared blocks, and the task table.

Invalid sizes fail here, at load, not in forward. Every config derives from one strict base
(``StrictModel``: unknown keys are errors, values are frozen).
"""

from perceiver.config.base import StrictModel
from perceiver.config.blocks import (
    ClassificationDecoderConfig,
    CrossAttentionConfig,
    EncoderConfig,
    FlowDecoderConfig,
    MaskedLMDecoderConfig,
    MultimodalDecoderConfig,
)
from perceiver.config.classifiers import (
    AudioClassifierConfig,
    PointCloudClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.config.flow import OpticalFlowConfig
from perceiver.config.image import ImageClassifierConfig
from perceiver.config.multimodal import MultimodalAutoencoderConfig
from perceiver.config.tasks import (
    TASK_CONFIGS,
    AnyTaskConfig,
    TaskConfig,
    load_task_config,
    shipped_configs,
    task_config,
)
from perceiver.config.text import MaskedLMConfig, SequenceClassifierConfig

__all__ = [
    "TASK_CONFIGS",
    "AnyTaskConfig",
    "AudioClassifierConfig",
    "ClassificationDecoderConfig",
    "CrossAttentionConfig",
    "EncoderConfig",
    "FlowDecoderConfig",
    "ImageClassifierConfig",
    "MaskedLMConfig",
    "MaskedLMDecoderConfig",
    "MultimodalAutoencoderConfig",
    "MultimodalDecoderConfig",
    "OpticalFlowConfig",
    "PointCloudClassifierConfig",
    "SequenceClassifierConfig",
    "StrictModel",
    "TaskConfig",
    "VideoClassifierConfig",
    "load_task_config",
    "shipped_configs",
    "task_config",
]
