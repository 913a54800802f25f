"""Task builders: one function per task wires generic blocks into a model from its config."""

from __future__ import annotations

from perceiver.adapters.base import InputAdapter
from perceiver.adapters.image import ImageInputAdapter
from perceiver.adapters.image_variants import (
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    PatchImageInputAdapter,
)
from perceiver.config import ImageClassifierConfig
from perceiver.decoders.classification import ClassificationDecoder
from perceiver.encoder import PerceiverEncoder
from perceiver.model import PerceiverIO


def _image_adapter(config: ImageClassifierConfig) -> InputAdapter:
    """The input adapter that ``config.preprocessing`` names."""
    bands, channels = config.num_frequency_bands, config.num_preprocessing_channels
    if config.preprocessing == "pixels":
        return ImageInputAdapter(config.image_shape, bands)
    if config.preprocessing == "conv1x1":
        return Conv1x1ImageInputAdapter(config.image_shape, bands, channels or 256)
    if config.preprocessing == "patches":
        return PatchImageInputAdapter(config.image_shape, config.patch_size, bands, channels)
    if config.preprocessing == "conv":
        return ConvImageInputAdapter(config.image_shape, bands, channels or 64)
    raise ValueError(f"unknown preprocessing {config.preprocessing!r}")


def image_classifier(config: ImageClassifierConfig) -> PerceiverIO:
    """Perceiver IO image classifier: (B, H, W, 3) images -> (B, num_classes) logits."""
    enc = config.encoder
    adapter = _image_adapter(config)
    encoder = PerceiverEncoder(
        input_adapter=adapter,
        num_latents=enc.num_latents,
        num_latent_channels=enc.num_latent_channels,
        num_cross_attention_heads=enc.num_cross_attention_heads,
        num_self_attention_heads=enc.num_self_attention_heads,
        num_self_attention_layers_per_block=enc.num_self_attention_layers_per_block,
        num_self_attention_blocks=enc.num_self_attention_blocks,
        cross_attention_widening_factor=enc.cross_attention_widening_factor,
        self_attention_widening_factor=enc.self_attention_widening_factor,
        num_cross_attention_qk_channels=enc.num_cross_attention_qk_channels,
        num_cross_attention_v_channels=enc.num_cross_attention_v_channels,
        dropout=enc.dropout,
        activation_checkpointing=enc.activation_checkpointing,
    )
    dec = config.decoder
    decoder = ClassificationDecoder(
        num_classes=config.num_classes,
        num_latent_channels=enc.num_latent_channels,
        num_output_query_channels=dec.num_output_query_channels,
        num_cross_attention_heads=dec.num_cross_attention_heads,
        cross_attention_widening_factor=dec.cross_attention_widening_factor,
        dropout=dec.dropout,
    )
    return PerceiverIO(encoder, decoder)
