"""Pydantic configs of the model library. Invalid sizes fail here, at load, not in forward."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EncoderConfig(StrictModel):
    """Latent array and its attention stack (see ``perceiver.encoder.PerceiverEncoder``)."""

    num_latents: int = Field(32, ge=1, description="number of latent positions L")
    num_latent_channels: int = Field(64, ge=1, description="latent width C")
    num_cross_attention_heads: int = Field(1, ge=1)
    num_cross_attention_qk_channels: int | None = Field(
        None, ge=1, description="query/key width of the input cross-attention (default: C)"
    )
    num_cross_attention_v_channels: int | None = Field(
        None, ge=1, description="value width of the input cross-attention (default: qk)"
    )
    num_self_attention_heads: int = Field(4, ge=1)
    num_self_attention_layers_per_block: int = Field(2, ge=1)
    num_self_attention_blocks: int = Field(
        1, ge=1, description="times the weight-shared latent block is applied"
    )
    cross_attention_widening_factor: int = Field(1, ge=1)
    self_attention_widening_factor: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="dropout on attention probabilities (default: dropout); Hugging Face "
        "conversions set dropout=0 and this to attention_probs_dropout_prob",
    )
    activation_checkpointing: bool = Field(
        False,
        description="recompute the cross-attention and latent layers in backward to save memory",
    )
    num_self_attention_qk_channels: int | None = Field(
        None, ge=1, description="query/key width of the latent self-attention (default: C)"
    )
    num_self_attention_v_channels: int | None = Field(
        None, ge=1, description="value width of the latent self-attention (default: qk)"
    )
    query_residual: bool = Field(
        True, description="residual around the input cross-attention (HF use_query_residual)"
    )

    @model_validator(mode="after")
    def _heads_divide_channels(self) -> EncoderConfig:
        self_qk = self.num_self_attention_qk_channels
        if self_qk is None and self.num_latent_channels % self.num_self_attention_heads != 0:
            raise ValueError(
                f"num_latent_channels={self.num_latent_channels} must be divisible by "
                f"num_self_attention_heads={self.num_self_attention_heads}"
            )
        self_qk = self_qk or self.num_latent_channels
        self_v = self.num_self_attention_v_channels or self_qk
        qk = self.num_cross_attention_qk_channels or self.num_latent_channels
        v = self.num_cross_attention_v_channels or qk
        for kind, name, width, heads in (
            ("cross", "qk", qk, self.num_cross_attention_heads),
            ("cross", "v", v, self.num_cross_attention_heads),
            ("self", "qk", self_qk, self.num_self_attention_heads),
            ("self", "v", self_v, self.num_self_attention_heads),
        ):
            if width % heads != 0:
                raise ValueError(
                    f"{kind}-attention {name} channels={width} must be divisible by "
                    f"num_{kind}_attention_heads={heads}"
                )
        return self


class ClassificationDecoderConfig(StrictModel):
    """One trainable query that cross-attends to the latents."""

    num_output_query_channels: int | None = Field(
        None, ge=1, description="query width (default: the latent width)"
    )
    num_cross_attention_heads: int = Field(1, ge=1)
    cross_attention_widening_factor: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="dropout on attention probabilities (default: dropout)"
    )


ImagePreprocessing = Literal["pixels", "conv1x1", "patches", "conv"]
PositionEncodingType = Literal["fourier", "trainable"]


class ImageClassifierConfig(StrictModel):
    """Perceiver IO image classifier: preprocessed image + 2D Fourier features -> class logits.

    ``preprocessing`` picks the input adapter (``perceiver.adapters``): ``pixels`` (every
    pixel is an input position), ``conv1x1`` (learned 1x1 conv per pixel), ``patches``
    (space-to-depth of ``patch_size`` patches) or ``conv`` (conv 7x7/2 + max-pool 3x3/2).
    """

    task: Literal["image_classification"] = "image_classification"
    image_shape: tuple[int, int, int] = Field(
        (224, 224, 3), description="(height, width, channels) of the input arrays"
    )
    num_classes: int = Field(..., ge=2)
    num_frequency_bands: int = Field(32, ge=1, description="Fourier bands per image axis")
    preprocessing: ImagePreprocessing = Field(
        "pixels", description="input adapter: pixels, conv1x1, patches or conv"
    )
    patch_size: int = Field(4, ge=1, description="patch side for preprocessing=patches")
    num_preprocessing_channels: int | None = Field(
        None,
        ge=1,
        description="channels after conv1x1 (default 256) or conv (default 64), or the "
        "projection width of patches (default: none, p*p*C raw channels)",
    )
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()
    # Options that Hugging Face conversions use (perceiver.convert); defaults are ours.
    normalize: bool = Field(
        True,
        description="normalise with the ImageNet mean/std; False takes float images as they are",
    )
    channels_first: bool = Field(False, description="take (B, C, H, W) instead of (B, H, W, C)")
    max_resolution: tuple[int, int] | None = Field(
        None, description="Fourier: highest band at max_resolution / 2 (default: the grid)"
    )
    position_encoding: PositionEncodingType = Field(
        "fourier", description="fourier features or a trainable table per grid position"
    )
    num_position_channels: int | None = Field(
        None, ge=1, description="width of the trainable position table"
    )
    num_position_projection_channels: int | None = Field(
        None, ge=1, description="trainable positions: linear projection to this width"
    )
    use_batchnorm: bool = Field(True, description="conv: BatchNorm after the conv (else a bias)")
    pool_padding: Literal[0, 1] = Field(1, description="conv: max-pool padding (HF: 0)")

    @model_validator(mode="after")
    def _positive_shape(self) -> ImageClassifierConfig:
        if min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be positive, got {self.image_shape}")
        return self

    @model_validator(mode="after")
    def _position_options_fit(self) -> ImageClassifierConfig:
        trainable = self.position_encoding == "trainable"
        if trainable and self.num_position_channels is None:
            raise ValueError("position_encoding='trainable' needs num_position_channels")
        if trainable and self.max_resolution is not None:
            raise ValueError("max_resolution applies to position_encoding='fourier' only")
        if not trainable and (
            self.num_position_channels is not None
            or self.num_position_projection_channels is not None
        ):
            raise ValueError(
                "num_position_channels and num_position_projection_channels apply to "
                "position_encoding='trainable' only"
            )
        return self

    @model_validator(mode="after")
    def _preprocessing_fits(self) -> ImageClassifierConfig:
        height, width, _ = self.image_shape
        if self.preprocessing == "patches" and (
            height % self.patch_size or width % self.patch_size
        ):
            raise ValueError(
                f"patch_size={self.patch_size} must divide the image height {height} and "
                f"width {width}"
            )
        if self.preprocessing == "pixels" and self.num_preprocessing_channels is not None:
            raise ValueError(
                f"num_preprocessing_channels={self.num_preprocessing_channels} does not apply "
                "to preprocessing='pixels'"
            )
        return self


# -- text and optical-flow tasks (the architectures ``perceiver.convert`` converts) --------


class MaskedLMDecoderConfig(StrictModel):
    """One trainable query per output position; logits through the tied token embedding."""

    num_output_positions: int | None = Field(
        None, ge=1, description="output positions (default: max_seq_len)"
    )
    num_output_query_channels: int | None = Field(
        None, ge=1, description="query width (default and only value: the embedding width)"
    )
    num_cross_attention_heads: int = Field(1, ge=1)
    num_cross_attention_qk_channels: int | None = Field(None, ge=1)
    num_cross_attention_v_channels: int | None = Field(None, ge=1)
    cross_attention_widening_factor: int = Field(1, ge=1)
    query_residual: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)


class TextModelConfig(StrictModel):
    """Token ids + trainable positions (``TextInputAdapter``) into a Perceiver encoder."""

    vocab_size: int = Field(262, ge=1, description="token ids (UTF-8 bytes + specials: 262)")
    max_seq_len: int = Field(2048, ge=1, description="longest input sequence")
    num_input_channels: int = Field(768, ge=1, description="embedding width (HF d_model)")
    encoder: EncoderConfig = EncoderConfig()


class MaskedLMConfig(TextModelConfig):
    """Perceiver IO masked language model: (B, N) ids -> (B, N_out, vocab_size) logits."""

    task: Literal["masked_language_modeling"] = "masked_language_modeling"
    decoder: MaskedLMDecoderConfig = MaskedLMDecoderConfig()

    @model_validator(mode="after")
    def _query_fits_the_tied_head(self) -> MaskedLMConfig:
        width = self.decoder.num_output_query_channels
        if width is not None and width != self.num_input_channels:
            raise ValueError(
                f"decoder.num_output_query_channels={width} must equal num_input_channels="
                f"{self.num_input_channels}: the logits are dot products with the embedding"
            )
        return self


class SequenceClassifierConfig(TextModelConfig):
    """Perceiver IO text classifier: (B, N) ids -> (B, num_classes) logits."""

    task: Literal["sequence_classification"] = "sequence_classification"
    num_classes: int = Field(..., ge=2)
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()


class InputQueryDecoderConfig(StrictModel):
    """The adapted inputs are the queries (``InputQueryDecoder``); one output per input."""

    num_output_channels: int = Field(2, ge=1, description="2 for (dy, dx) flow")
    num_cross_attention_heads: int = Field(1, ge=1)
    num_cross_attention_qk_channels: int | None = Field(None, ge=1)
    num_cross_attention_v_channels: int | None = Field(None, ge=1)
    cross_attention_widening_factor: int = Field(1, ge=1)
    query_residual: bool = False
    rescale_factor: float = Field(100.0, description="outputs are divided by this")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _nonzero_rescale(self) -> InputQueryDecoderConfig:
        if self.rescale_factor == 0:
            raise ValueError("rescale_factor must be non-zero")
        return self


class OpticalFlowConfig(StrictModel):
    """Perceiver IO optical flow: (B, T, C, H, W) frame features -> (B, H, W, 2) flow.

    Each pixel's T*C values are projected to ``num_preprocessing_channels`` and 2D Fourier
    features of the pixel are concatenated (``FrameStackInputAdapter``); the decoder queries
    are those same per-pixel inputs.
    """

    task: Literal["optical_flow"] = "optical_flow"
    frames_shape: tuple[int, int, int, int] = Field(
        (2, 27, 368, 496), description="(frames T, channels C, height H, width W)"
    )
    num_preprocessing_channels: int = Field(64, ge=1, description="projection width")
    num_frequency_bands: int = Field(64, ge=1, description="Fourier bands per axis")
    max_resolution: tuple[int, int] | None = Field(
        None, description="highest Fourier band at max_resolution / 2 (default: (H, W))"
    )
    encoder: EncoderConfig = EncoderConfig()
    decoder: InputQueryDecoderConfig = InputQueryDecoderConfig()

    @model_validator(mode="after")
    def _positive_shape(self) -> OpticalFlowConfig:
        if min(self.frames_shape) < 1:
            raise ValueError(f"frames_shape must be positive, got {self.frames_shape}")
        return self


TaskConfig = ImageClassifierConfig | MaskedLMConfig | SequenceClassifierConfig | OpticalFlowConfig
