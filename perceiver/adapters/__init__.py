"""Input adapters: turn one modality's raw tensor into a (B, M, C) array of input positions.

Every adapter is an ``InputAdapter`` (``perceiver.modules.inputs``, the contract encoders
read): ``image`` and ``image_variants`` (pixels, conv1x1, patches, conv stem), ``audio``
(raw waveform patches), ``video`` (space-time patches), ``flow`` (frame pairs, 3x3 patches),
``text`` (token ids), ``label`` (class vectors), ``point_cloud`` and ``multimodal`` (several
adapters' positions in one array, with padding and mask tokens).
"""

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.flow import FlowInputAdapter, extract_flow_patches
from perceiver.adapters.image import ImageAdapterBase, ImageInputAdapter
from perceiver.adapters.image_variants import (
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    PatchImageInputAdapter,
)
from perceiver.adapters.label import LabelInputAdapter
from perceiver.adapters.multimodal import MultimodalInputAdapter
from perceiver.adapters.point_cloud import PointCloudInputAdapter
from perceiver.adapters.text import TextInputAdapter
from perceiver.adapters.video import VideoInputAdapter
from perceiver.modules.inputs import InputAdapter

__all__ = [
    "AudioInputAdapter",
    "Conv1x1ImageInputAdapter",
    "ConvImageInputAdapter",
    "FlowInputAdapter",
    "ImageAdapterBase",
    "ImageInputAdapter",
    "InputAdapter",
    "LabelInputAdapter",
    "MultimodalInputAdapter",
    "PatchImageInputAdapter",
    "PointCloudInputAdapter",
    "TextInputAdapter",
    "VideoInputAdapter",
    "extract_flow_patches",
]
