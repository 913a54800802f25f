"""Task builders: one function per task wires generic blocks into a model from its config.

Each builder reads its pydantic config alone, so a model is described completely by its config
and weights (``perceiver.portable``); models converted from Hugging Face
(``perceiver.convert``) are built by these same functions.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.base import InputAdapter
from perceiver.adapters.frame_stack import FrameStackInputAdapter
from perceiver.adapters.image import IMAGENET_MEAN, IMAGENET_STD, ImageInputAdapter
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
from perceiver.attention import MultiHeadAttention
from perceiver.config import (
    AudioClassifierConfig,
    ClassificationDecoderConfig,
    EncoderConfig,
    ImageClassifierConfig,
    MaskedLMConfig,
    OpticalFlowConfig,
    PointCloudClassifierConfig,
    SequenceClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.config_multimodal import MultimodalAutoencoderConfig
from perceiver.decoders.basic import BasicDecoder
from perceiver.decoders.classification import ClassificationDecoder
from perceiver.decoders.input_query import InputQueryDecoder
from perceiver.decoders.multimodal import (
    FourierOutputQuery,
    MultimodalDecoder,
    OutputQuery,
    TrainableOutputQuery,
)
from perceiver.decoders.tied_embedding import TiedEmbeddingHead
from perceiver.encoder import PerceiverEncoder
from perceiver.input_query_model import InputQueryPerceiverIO
from perceiver.model import PerceiverIO
from perceiver.multimodal_model import MultimodalAutoencoder
from perceiver.position import (
    PositionEncoding,
    ProjectedPositionEncoding,
    TrainablePositionEncoding,
)
from perceiver.postprocessors import (
    ClassificationPostprocessor,
    MultimodalPostprocessor,
    PatchPostprocessor,
    ProjectionPostprocessor,
)
from perceiver.text_model import TextPerceiverIO


def _set_attention_dropout(module: nn.Module, dropout: float | None) -> None:
    """Dropout on the attention probabilities of every attention in ``module``."""
    if dropout is None:
        return
    for m in module.modules():
        if isinstance(m, MultiHeadAttention):
            m.dropout = dropout


def _stride2(size: int, kernel: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // 2 + 1


def _image_grid(config: ImageClassifierConfig) -> tuple[int, int]:
    """The position grid the adapter of ``config.preprocessing`` produces."""
    height, width, _ = config.image_shape
    if config.preprocessing == "patches":
        return height // config.patch_size, width // config.patch_size
    if config.preprocessing == "conv":
        pad = config.pool_padding
        return _stride2(_stride2(height, 7, 3), 3, pad), _stride2(_stride2(width, 7, 3), 3, pad)
    return height, width


def _image_position_encoding(config: ImageClassifierConfig) -> PositionEncoding | None:
    """The injected trainable position encoding, or None for Fourier features."""
    if config.position_encoding == "fourier":
        return None
    assert config.num_position_channels is not None  # checked by the config
    encoding: PositionEncoding = TrainablePositionEncoding(
        math.prod(_image_grid(config)), config.num_position_channels
    )
    if config.num_position_projection_channels is not None:
        encoding = ProjectedPositionEncoding(encoding, config.num_position_projection_channels)
    return encoding


def _image_adapter(config: ImageClassifierConfig) -> InputAdapter:
    """The input adapter that ``config.preprocessing`` names."""
    channels = config.num_preprocessing_channels
    position_encoding = _image_position_encoding(config)
    fourier = position_encoding is None
    common: dict[str, Any] = {
        "mean": IMAGENET_MEAN if config.normalize else None,
        "std": IMAGENET_STD if config.normalize else None,
        "channels_first": config.channels_first,
        "max_resolution": config.max_resolution,
        "position_encoding": position_encoding,
    }
    bands = config.num_frequency_bands if fourier else None
    if config.preprocessing == "pixels":
        return ImageInputAdapter(config.image_shape, bands, **common)
    if config.preprocessing == "conv1x1":
        return Conv1x1ImageInputAdapter(config.image_shape, bands, channels or 256, **common)
    if config.preprocessing == "patches":
        return PatchImageInputAdapter(
            config.image_shape, config.patch_size, bands, channels, **common
        )
    if config.preprocessing == "conv":
        return ConvImageInputAdapter(
            config.image_shape,
            bands,
            channels or 64,
            use_batchnorm=config.use_batchnorm,
            pool_padding=config.pool_padding,
            **common,
        )
    raise ValueError(f"unknown preprocessing {config.preprocessing!r}")


def encoder(enc: EncoderConfig, adapter: InputAdapter) -> PerceiverEncoder:
    """The ``PerceiverEncoder`` that ``enc`` describes, around ``adapter``."""
    module = PerceiverEncoder(
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
        num_self_attention_qk_channels=enc.num_self_attention_qk_channels,
        num_self_attention_v_channels=enc.num_self_attention_v_channels,
        query_residual=enc.query_residual,
        kv_chunk_size=enc.kv_chunk_size,
    )
    _set_attention_dropout(module, enc.attention_dropout)
    return module


def classification_decoder(
    dec: ClassificationDecoderConfig, num_classes: int, num_latent_channels: int
) -> ClassificationDecoder:
    module = ClassificationDecoder(
        num_classes=num_classes,
        num_latent_channels=num_latent_channels,
        num_output_query_channels=dec.num_output_query_channels,
        num_cross_attention_heads=dec.num_cross_attention_heads,
        cross_attention_widening_factor=dec.cross_attention_widening_factor,
        dropout=dec.dropout,
    )
    _set_attention_dropout(module, dec.attention_dropout)
    return module


def image_classifier(config: ImageClassifierConfig) -> PerceiverIO:
    """Perceiver IO image classifier: (B, H, W, 3) images -> (B, num_classes) logits.

    With ``channels_first=True`` the images are (B, 3, H, W).
    """
    enc = encoder(config.encoder, _image_adapter(config))
    dec = classification_decoder(
        config.decoder, config.num_classes, config.encoder.num_latent_channels
    )
    return PerceiverIO(enc, dec)


def _text_adapter(config: MaskedLMConfig | SequenceClassifierConfig) -> TextInputAdapter:
    return TextInputAdapter(config.vocab_size, config.max_seq_len, config.num_input_channels)


def masked_lm(config: MaskedLMConfig) -> TextPerceiverIO:
    """(B, N) token ids -> (B, N_out, vocab_size) logits; the head is the tied embedding."""
    adapter = _text_adapter(config)
    enc = encoder(config.encoder, adapter)
    d = config.decoder
    dec = BasicDecoder(
        num_output_channels=config.vocab_size,
        num_latent_channels=config.encoder.num_latent_channels,
        output_index_shape=(d.num_output_positions or config.max_seq_len,),
        query_type="trainable",
        num_output_query_channels=config.num_input_channels,
        num_cross_attention_heads=d.num_cross_attention_heads,
        num_cross_attention_qk_channels=d.num_cross_attention_qk_channels,
        num_cross_attention_v_channels=d.num_cross_attention_v_channels,
        cross_attention_widening_factor=d.cross_attention_widening_factor,
        query_residual=d.query_residual,
        dropout=d.dropout,
        head=TiedEmbeddingHead(adapter.token_embedding),
    )
    _set_attention_dropout(dec, d.attention_dropout)
    return TextPerceiverIO(enc, dec)


def sequence_classifier(config: SequenceClassifierConfig) -> TextPerceiverIO:
    """(B, N) token ids -> (B, num_classes) logits."""
    enc = encoder(config.encoder, _text_adapter(config))
    dec = classification_decoder(
        config.decoder, config.num_classes, config.encoder.num_latent_channels
    )
    return TextPerceiverIO(enc, dec)


def optical_flow(config: OpticalFlowConfig) -> InputQueryPerceiverIO:
    """(B, T, C, H, W) frame features -> (B, H, W, num_output_channels) flow."""
    adapter = FrameStackInputAdapter(
        config.frames_shape,
        num_output_channels=config.num_preprocessing_channels,
        num_frequency_bands=config.num_frequency_bands,
        max_resolution=config.max_resolution,
    )
    enc = encoder(config.encoder, adapter)
    d = config.decoder
    dec = InputQueryDecoder(
        num_output_channels=d.num_output_channels,
        num_latent_channels=config.encoder.num_latent_channels,
        num_query_channels=adapter.num_input_channels,
        output_index_shape=config.frames_shape[2:],
        num_cross_attention_heads=d.num_cross_attention_heads,
        num_cross_attention_qk_channels=d.num_cross_attention_qk_channels,
        num_cross_attention_v_channels=d.num_cross_attention_v_channels,
        cross_attention_widening_factor=d.cross_attention_widening_factor,
        query_residual=d.query_residual,
        rescale_factor=d.rescale_factor,
        dropout=d.dropout,
    )
    _set_attention_dropout(dec, d.attention_dropout)
    return InputQueryPerceiverIO(enc, dec)


def _classifier(
    adapter: InputAdapter,
    config: AudioClassifierConfig | VideoClassifierConfig | PointCloudClassifierConfig,
) -> PerceiverIO:
    enc = encoder(config.encoder, adapter)
    dec = classification_decoder(
        config.decoder, config.num_classes, config.encoder.num_latent_channels
    )
    return PerceiverIO(enc, dec)


def audio_classifier(config: AudioClassifierConfig) -> PerceiverIO:
    """(B, T) or (B, T, C_audio) waveforms -> (B, num_classes) multi-label logits (for BCE)."""
    adapter = AudioInputAdapter(
        config.num_samples,
        config.samples_per_patch,
        config.num_frequency_bands,
        num_audio_channels=config.num_audio_channels,
        max_resolution=None if config.max_resolution is None else (config.max_resolution,),
    )
    return _classifier(adapter, config)


def video_classifier(config: VideoClassifierConfig) -> PerceiverIO:
    """(B, T, H, W, C) clips (or (B, T, C, H, W)) -> (B, num_classes) logits."""
    adapter = VideoInputAdapter(
        config.video_shape,
        config.patch_shape,
        config.num_frequency_bands,
        mean=config.mean,
        std=config.std,
        max_resolution=config.max_resolution,
        channels_first=config.channels_first,
    )
    return _classifier(adapter, config)


def point_cloud_classifier(config: PointCloudClassifierConfig) -> PerceiverIO:
    """(B, N, 3) points -> (B, num_classes) logits, invariant to the order of the points."""
    adapter = PointCloudInputAdapter(config.num_frequency_bands, config.max_resolution)
    return _classifier(adapter, config)


def multimodal_autoencoder(config: MultimodalAutoencoderConfig) -> MultimodalAutoencoder:
    """{"audio", "image", "label"} inputs -> latents -> per-modality reconstructions.

    See ``MultimodalAutoencoderConfig`` for the shapes and ``MultimodalAutoencoder`` for
    subsampled and chunked decoding.
    """
    frames, height, width, channels = config.video_shape
    num_samples = config.num_audio_samples
    image_resolution = config.image_max_resolution or (frames, height, width)
    audio_resolution = (config.audio_max_resolution or num_samples,)
    adapter = MultimodalInputAdapter(
        {
            "audio": AudioInputAdapter(
                num_samples,
                config.samples_per_patch,
                config.audio_num_frequency_bands,
                max_resolution=audio_resolution,
            ),
            "image": VideoInputAdapter(
                config.video_shape,
                config.image_patch_shape,
                config.image_num_frequency_bands,
                max_resolution=image_resolution,
                channels_first=config.channels_first,
            ),
            "label": LabelInputAdapter(config.num_classes),
        },
        min_padding_size=config.min_padding_size,
        mask_probs=config.mask_probs,
        eval_masked=config.eval_masked,
    )
    enc = encoder(config.encoder, adapter)
    d = config.decoder
    queries: dict[str, OutputQuery] = {
        "audio": FourierOutputQuery(
            (num_samples // config.samples_per_patch,),
            d.audio_num_frequency_bands,
            audio_resolution,
        ),
        "image": FourierOutputQuery(
            (frames, height, width), d.image_num_frequency_bands, image_resolution
        ),
        "label": TrainableOutputQuery(1, d.num_label_query_channels),
    }
    dec = MultimodalDecoder(
        queries,
        num_latent_channels=config.encoder.num_latent_channels,
        num_output_channels=d.num_output_channels,
        min_padding_size=d.min_padding_size,
        num_cross_attention_heads=d.num_cross_attention_heads,
        num_cross_attention_qk_channels=d.num_cross_attention_qk_channels,
        num_cross_attention_v_channels=d.num_cross_attention_v_channels,
        cross_attention_widening_factor=d.cross_attention_widening_factor,
        dropout=d.dropout,
        chunk_size=d.chunk_size,
    )
    _set_attention_dropout(dec, d.attention_dropout)
    post = MultimodalPostprocessor(
        {
            "audio": PatchPostprocessor(d.num_output_channels, config.samples_per_patch),
            "image": ProjectionPostprocessor(d.num_output_channels, channels),
            "label": ClassificationPostprocessor(d.num_output_channels, config.num_classes),
        }
    )
    return MultimodalAutoencoder(enc, dec, post)
