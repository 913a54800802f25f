"""Read a Hugging Face Perceiver's input preprocessor into our config fields and module map.

Each ``*_fields`` reader returns the task config's adapter fields and the ``ModuleMap`` of
the adapter's weights (``perceiver.convert.weights``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from perceiver.convert.blocks import require
from perceiver.convert.weights import ModuleMap


def _image_shape(hf_model: Any, image_size: int | tuple[int, int] | None) -> tuple[int, int, int]:
    size = hf_model.config.image_size if image_size is None else image_size
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(height), int(width), int(hf_model.perceiver.input_preprocessor.in_channels)


def _image_preprocessor(hf_model: Any, prep_type: str, position_encoding_type: str) -> Any:
    pre = hf_model.perceiver.input_preprocessor
    require(
        pre.prep_type == prep_type and pre.position_encoding_type == position_encoding_type,
        f"expected a {prep_type!r} image preprocessor with {position_encoding_type} positions, "
        f"got {pre.prep_type!r} with {pre.position_encoding_type}",
    )
    require(
        pre.spatial_downsample == 1 and pre.concat_or_add_pos == "concat",
        f"spatial_downsample={pre.spatial_downsample} and concat_or_add_pos="
        f"{pre.concat_or_add_pos!r}: only 1 and 'concat' are supported",
    )
    return pre


def _fourier_fields(pre: Any) -> dict[str, Any]:
    """Our Fourier options from a Hugging Face preprocessor without position projection."""
    fourier = pre.position_embeddings
    require(
        fourier.concat_pos and not fourier.sine_only and pre.project_pos_dim <= 0,
        f"Fourier positions with concat_pos={fourier.concat_pos}, sine_only={fourier.sine_only}, "
        f"project_pos_dim={pre.project_pos_dim} are not supported",
    )
    return {
        "num_frequency_bands": int(fourier.num_bands),
        "max_resolution": tuple(int(r) for r in fourier.max_resolution),
    }


# Hugging Face image models take channels-first, un-normalised float images.
HF_IMAGE = {"normalize": False, "channels_first": True}


def pixels_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "pixels", "fourier")
    fields = {"preprocessing": "pixels", **_fourier_fields(pre)}
    return {"image_shape": _image_shape(hf_model, image_size), **fields}, {}


def conv1x1_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv1x1", "trainable")
    conv = pre.convnet_1x1
    require(tuple(conv.stride) == (1, 1), f"conv1x1 stride {tuple(conv.stride)} is not supported")
    shape = _image_shape(hf_model, image_size)
    num_positions, num_channels = pre.position_embeddings.position_embeddings.shape  # (N, C)
    grid = shape[:2]
    require(
        num_positions == grid[0] * grid[1],
        f"position_encoding has {num_positions} positions, the position grid {grid} has "
        f"{grid[0] * grid[1]}",
    )
    hf = "perceiver.input_preprocessor"
    ours = "encoder.input_adapter.position_encoding"
    projected = pre.project_pos_dim > 0
    table = f"{ours}.encoding.table" if projected else f"{ours}.table"
    modules = {
        table: f"{hf}.position_embeddings.position_embeddings",
        "encoder.input_adapter.conv1x1": f"{hf}.convnet_1x1",
    }
    if projected:
        modules[f"{ours}.projection"] = f"{hf}.positions_projection"
    fields = {
        "image_shape": shape,
        "preprocessing": "conv1x1",
        "num_preprocessing_channels": conv.out_channels,
        "position_encoding": "trainable",
        "num_position_channels": num_channels,
        "num_position_projection_channels": pre.project_pos_dim if projected else None,
    }
    return fields, modules


def conv_fields(hf_model: Any, image_size: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "conv", "fourier")
    convnet = pre.convnet
    norm = convnet.batchnorm
    require(
        isinstance(norm, nn.BatchNorm2d),
        "conv preprocessing without batchnorm is not supported",
    )
    require(
        norm.eps == 1e-5 and norm.momentum == 0.1 and norm.affine and norm.track_running_stats,
        f"batchnorm eps={norm.eps}, momentum={norm.momentum}: only PyTorch's defaults "
        "(1e-5, 0.1) are supported",
    )
    fields = {
        "image_shape": _image_shape(hf_model, image_size),
        "preprocessing": "conv",
        "num_preprocessing_channels": convnet.conv.out_channels,
        "use_batchnorm": True,
        "pool_padding": 0,
        **_fourier_fields(pre),
    }
    hf = "perceiver.input_preprocessor.convnet"
    return fields, {
        "encoder.input_adapter.conv": f"{hf}.conv",
        "encoder.input_adapter.norm": f"{hf}.batchnorm",
    }


def text_fields(hf_model: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = hf_model.perceiver.input_preprocessor
    vocab_size, num_channels = pre.embeddings.weight.shape
    fields = {
        "vocab_size": vocab_size,
        "max_seq_len": pre.position_embeddings.num_embeddings,
        "num_input_channels": num_channels,
    }
    hf = "perceiver.input_preprocessor"
    return fields, {
        "encoder.input_adapter.token_embedding": f"{hf}.embeddings",
        "encoder.input_adapter.position_encoding.table": f"{hf}.position_embeddings.weight",
    }


def flow_fields(hf_model: Any) -> tuple[dict[str, Any], ModuleMap]:
    pre = _image_preprocessor(hf_model, "patches", "fourier")
    require(
        pre.conv_after_patching and isinstance(pre.conv_after_patches, nn.Linear),
        "optical-flow preprocessing without conv_after_patching is not supported",
    )
    frames = pre.temporal_downsample  # all frames go into one position: (B, 1, H, W, T*C)
    projection = pre.conv_after_patches
    require(
        projection.in_features % frames == 0,
        f"conv_after_patching_in_channels={projection.in_features} is not a multiple of "
        f"temporal_downsample={frames}",
    )
    per_frame = projection.in_features // frames
    require(
        per_frame % 9 == 0,
        f"{per_frame} values per frame and pixel are not 3x3 patches (a multiple of 9)",
    )
    height, width = hf_model.perceiver.decoder.output_image_shape  # inputs must match it
    fields = {
        "image_size": (height, width),
        "num_frames": frames,
        "num_image_channels": per_frame // 9,
        "patch_size": 3,
        "num_preprocessing_channels": projection.out_features,
        **_fourier_fields(pre),
    }
    return fields, {
        "encoder.input_adapter.projection": "perceiver.input_preprocessor.conv_after_patches"
    }
