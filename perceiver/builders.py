"""Builders: a task's config -> its model, every block constructed here and injected.

Two levels, as torchtune's ``_component_builders``:

- component builders turn the sizes of a config into modules: ``cross_attention_layer``
  (the one place a ``CrossAttentionLayer`` is made, for the encoder and every decoder),
  ``self_attention_block``, ``encoder`` and ``decoder``; layers and encoders take these
  modules, not sizes;
- task builders (``image_classifier``, ``optical_flow``, ...) pick the adapter, the output
  query and the head of their task and compose them. ``build(config)`` dispatches on the
  config's class; every member of ``perceiver.config.TaskConfig`` has a builder.

A model is described completely by its config and weights (``perceiver.portable``); models
converted from Hugging Face (``perceiver.convert``) are built by these same functions.
"""

from __future__ import annotations

import math
from functools import singledispatch
from typing import Any

from torch import nn

from perceiver.adapters import (
    AudioInputAdapter,
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    FlowInputAdapter,
    ImageInputAdapter,
    InputAdapter,
    LabelInputAdapter,
    MultimodalInputAdapter,
    PatchImageInputAdapter,
    PointCloudInputAdapter,
    TextInputAdapter,
    VideoInputAdapter,
)
from perceiver.adapters.image import IMAGENET_MEAN, IMAGENET_STD
from perceiver.config import (
    AudioClassifierConfig,
    ClassificationDecoderConfig,
    CrossAttentionConfig,
    EncoderConfig,
    ImageClassifierConfig,
    MaskedLMConfig,
    MultimodalAutoencoderConfig,
    OpticalFlowConfig,
    PointCloudClassifierConfig,
    SequenceClassifierConfig,
    VideoClassifierConfig,
)
from perceiver.decoders import (
    ClassificationHead,
    ClassificationPostprocessor,
    FourierQuery,
    GridHead,
    InputQuery,
    MultimodalPostprocessor,
    MultimodalQuery,
    OutputQuery,
    PatchPostprocessor,
    PerceiverDecoder,
    ProjectionPostprocessor,
    TiedEmbeddingHead,
    TrainableQuery,
)
from perceiver.modules.attention import (
    MLP,
    CrossAttentionLayer,
    MultiHeadAttention,
    SelfAttentionBlock,
    SelfAttentionLayer,
)
from perceiver.modules.encoder import PerceiverEncoder
from perceiver.modules.multimodal_autoencoder import MultimodalAutoencoder
from perceiver.modules.perceiver_io import PerceiverIO, TextPerceiverIO
from perceiver.modules.position import (
    PositionEncoding,
    ProjectedPositionEncoding,
    TrainablePositionEncoding,
)
from perceiver.modules.state_dict import rename_on_load

# -- component builders ----------------------------------------------------------------


def cross_attention_layer(
    spec: CrossAttentionConfig,
    num_q_channels: int,
    num_kv_channels: int,
    chunk_size: int | None = None,
    kv_chunk_size: int | None = None,
) -> CrossAttentionLayer:
    """Queries of ``num_q_channels`` attend to ``num_kv_channels``-wide keys/values."""
    attention = MultiHeadAttention(
        num_heads=spec.num_cross_attention_heads,
        num_q_input_channels=num_q_channels,
        num_kv_input_channels=num_kv_channels,
        num_qk_channels=spec.num_cross_attention_qk_channels,
        num_v_channels=spec.num_cross_attention_v_channels,
        dropout=spec.attention_dropout_rate,
    )
    mlp = MLP(num_q_channels, spec.cross_attention_widening_factor, spec.dropout)
    return CrossAttentionLayer(
        attention,
        mlp,
        query_residual=spec.query_residual,
        chunk_size=chunk_size,
        kv_chunk_size=kv_chunk_size,
    )


def self_attention_block(enc: EncoderConfig) -> SelfAttentionBlock:
    """The latent block: ``num_self_attention_layers_per_block`` layers over the latents."""
    width = enc.num_latent_channels
    layers = [
        SelfAttentionLayer(
            MultiHeadAttention(
                num_heads=enc.num_self_attention_heads,
                num_q_input_channels=width,
                num_kv_input_channels=width,
                num_qk_channels=enc.num_self_attention_qk_channels,
                num_v_channels=enc.num_self_attention_v_channels,
                dropout=enc.attention_dropout_rate,
            ),
            MLP(width, enc.self_attention_widening_factor, enc.dropout),
        )
        for _ in range(enc.num_self_attention_layers_per_block)
    ]
    return SelfAttentionBlock(layers)


def encoder(enc: EncoderConfig, adapter: InputAdapter) -> PerceiverEncoder:
    """The ``PerceiverEncoder`` that ``enc`` describes, around ``adapter``."""
    cross = cross_attention_layer(
        enc, enc.num_latent_channels, adapter.num_input_channels, kv_chunk_size=enc.kv_chunk_size
    )
    return PerceiverEncoder(
        adapter,
        cross,
        self_attention_block(enc),
        num_latents=enc.num_latents,
        num_self_attention_blocks=enc.num_self_attention_blocks,
        activation_checkpointing=enc.activation_checkpointing,
    )


def decoder(
    spec: CrossAttentionConfig,
    query: OutputQuery,
    num_latent_channels: int,
    head: nn.Module,
    chunk_size: int | None = None,
) -> PerceiverDecoder:
    """``query`` cross-attends to the latents as ``spec`` says; ``head`` reads the result."""
    cross = cross_attention_layer(spec, query.num_channels, num_latent_channels, chunk_size)
    return PerceiverDecoder(query, cross, head)


def classification_decoder(
    dec: ClassificationDecoderConfig, num_classes: int, num_latent_channels: int
) -> PerceiverDecoder:
    """One trainable query -> (B, num_classes) logits."""
    width = dec.num_output_query_channels or num_latent_channels
    query = TrainableQuery(1, width)
    return decoder(dec, query, num_latent_channels, ClassificationHead(width, num_classes))


# -- input adapters -----------------------------------------------------------------------


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
    if config.position_encoding == "fourier" or config.num_position_channels is None:
        return None
    encoding: PositionEncoding = TrainablePositionEncoding(
        math.prod(_image_grid(config)), config.num_position_channels
    )
    if config.num_position_projection_channels is not None:
        encoding = ProjectedPositionEncoding(encoding, config.num_position_projection_channels)
    return encoding


def image_adapter(config: ImageClassifierConfig) -> InputAdapter:
    """The input adapter that ``config.preprocessing`` names."""
    channels = config.num_preprocessing_channels
    position_encoding = _image_position_encoding(config)
    bands = config.num_frequency_bands if position_encoding is None else None
    common: dict[str, Any] = {
        "mean": IMAGENET_MEAN if config.normalize else None,
        "std": IMAGENET_STD if config.normalize else None,
        "channels_first": config.channels_first,
        "max_resolution": config.max_resolution,
        "position_encoding": position_encoding,
    }
    shape = config.image_shape
    if config.preprocessing == "conv1x1":
        return Conv1x1ImageInputAdapter(shape, bands, channels or 256, **common)
    if config.preprocessing == "patches":
        return PatchImageInputAdapter(shape, config.patch_size, bands, channels, **common)
    if config.preprocessing == "conv":
        return ConvImageInputAdapter(
            shape,
            bands,
            channels or 64,
            use_batchnorm=config.use_batchnorm,
            pool_padding=config.pool_padding,
            **common,
        )
    return ImageInputAdapter(shape, bands, **common)  # "pixels"


def multimodal_adapter(config: MultimodalAutoencoderConfig) -> MultimodalInputAdapter:
    """Audio patches, video patches and the label, padded to one width, maskable."""
    num_samples = config.num_audio_samples
    frames, height, width, _ = config.video_shape
    return MultimodalInputAdapter(
        {
            "audio": AudioInputAdapter(
                num_samples,
                config.samples_per_patch,
                config.audio_num_frequency_bands,
                max_resolution=(config.audio_max_resolution or num_samples,),
            ),
            "image": VideoInputAdapter(
                config.video_shape,
                config.image_patch_shape,
                config.image_num_frequency_bands,
                max_resolution=config.image_max_resolution or (frames, height, width),
                channels_first=config.channels_first,
            ),
            "label": LabelInputAdapter(config.num_classes),
        },
        min_padding_size=config.min_padding_size,
        mask_probs=config.mask_probs,
        eval_masked=config.eval_masked,
    )


# -- task builders -------------------------------------------------------------------------


@singledispatch
def build(config: Any) -> nn.Module:
    """The model of a task config (any member of ``perceiver.config.TaskConfig``)."""
    raise ValueError(
        f"no builder for {type(config).__name__} (task {getattr(config, 'task', None)!r})"
    )


def _classifier(adapter: InputAdapter, config: Any) -> PerceiverIO:
    width = config.encoder.num_latent_channels
    dec = classification_decoder(config.decoder, config.num_classes, width)
    return PerceiverIO(encoder(config.encoder, adapter), dec)


@build.register
def image_classifier(config: ImageClassifierConfig) -> PerceiverIO:
    """(B, H, W, 3) images (or (B, 3, H, W) with ``channels_first``) -> (B, num_classes)."""
    return _classifier(image_adapter(config), config)


@build.register
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


@build.register
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


@build.register
def point_cloud_classifier(config: PointCloudClassifierConfig) -> PerceiverIO:
    """(B, N, 3) points -> (B, num_classes) logits, invariant to the order of the points."""
    adapter = PointCloudInputAdapter(config.num_frequency_bands, config.max_resolution)
    return _classifier(adapter, config)


def _text_adapter(config: MaskedLMConfig | SequenceClassifierConfig) -> TextInputAdapter:
    return TextInputAdapter(config.vocab_size, config.max_seq_len, config.num_input_channels)


@build.register
def sequence_classifier(config: SequenceClassifierConfig) -> TextPerceiverIO:
    """(B, N) token ids -> (B, num_classes) logits."""
    width = config.encoder.num_latent_channels
    dec = classification_decoder(config.decoder, config.num_classes, width)
    return TextPerceiverIO(encoder(config.encoder, _text_adapter(config)), dec)


@build.register
def masked_lm(config: MaskedLMConfig) -> TextPerceiverIO:
    """(B, N) token ids -> (B, N_out, vocab_size) logits; the head is the tied embedding."""
    adapter = _text_adapter(config)
    d = config.decoder
    query = TrainableQuery(d.num_output_positions or config.max_seq_len, config.num_input_channels)
    head = TiedEmbeddingHead(adapter.token_embedding)
    dec = decoder(d, query, config.encoder.num_latent_channels, head)
    return TextPerceiverIO(encoder(config.encoder, adapter), dec)


@build.register
def optical_flow(config: OpticalFlowConfig) -> PerceiverIO:
    """(B, 2, H, W, 3) frame pairs (uint8) -> (B, H, W, 2) flow (u, v) in pixels."""
    adapter = FlowInputAdapter(
        config.frames_shape,
        num_output_channels=config.num_preprocessing_channels,
        num_frequency_bands=config.num_frequency_bands,
        patch_size=config.patch_size,
        max_resolution=config.max_resolution,
    )
    d = config.decoder
    query = InputQuery(adapter.num_input_channels)  # each pixel's inputs ask for its flow
    scale = d.flow_scale_factor / d.rescale_factor
    head = GridHead(query.num_channels, d.num_output_channels, config.image_size, scale)
    dec = decoder(d, query, config.encoder.num_latent_channels, head)
    return PerceiverIO(encoder(config.encoder, adapter), dec)


@build.register
def multimodal_autoencoder(config: MultimodalAutoencoderConfig) -> MultimodalAutoencoder:
    """{"audio", "image", "label"} inputs -> latents -> per-modality reconstructions.

    See ``MultimodalAutoencoderConfig`` for the shapes and ``MultimodalAutoencoder`` for
    subsampled and chunked decoding.
    """
    frames, height, width, channels = config.video_shape
    num_samples = config.num_audio_samples
    d = config.decoder
    query = MultimodalQuery(
        {
            "audio": FourierQuery(
                (num_samples // config.samples_per_patch,),
                d.audio_num_frequency_bands,
                (config.audio_max_resolution or num_samples,),
            ),
            "image": FourierQuery(
                (frames, height, width),
                d.image_num_frequency_bands,
                config.image_max_resolution or (frames, height, width),
            ),
            "label": TrainableQuery(1, d.num_label_query_channels),
        },
        min_padding_size=d.min_padding_size,
    )
    head = nn.Linear(query.num_channels, d.num_output_channels)
    dec = decoder(d, query, config.encoder.num_latent_channels, head, d.chunk_size)
    # Models saved before the decoder took its queries by injection kept them at decoder.*.
    rename_on_load(dec, {"queries.": "output_query.queries.", "padding.": "output_query.padding."})
    post = MultimodalPostprocessor(
        {
            "audio": PatchPostprocessor(d.num_output_channels, config.samples_per_patch),
            "image": ProjectionPostprocessor(d.num_output_channels, channels),
            "label": ClassificationPostprocessor(d.num_output_channels, config.num_classes),
        }
    )
    return MultimodalAutoencoder(encoder(config.encoder, multimodal_adapter(config)), dec, post)
