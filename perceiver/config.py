"""Pydantic configs of the model library. Invalid sizes fail here, at load, not in forward."""

from __future__ import annotations

from pathlib import Path
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
    kv_chunk_size: int | None = Field(
        None,
        ge=1,
        description="input positions the input cross-attention normalises, projects and "
        "attends to at a time, merged exactly by log-sum-exp, so memory stays bounded for "
        "very many inputs (None: all at once)",
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


# -- audio, video and point-cloud classifiers ---------------------------------------------


class AudioClassifierConfig(StrictModel):
    """Perceiver IO raw-audio classifier (AudioSet): (B, T) waveform -> (B, num_classes) logits.

    Samples are grouped into patches of ``samples_per_patch`` with 1D Fourier features of the
    patch index (``AudioInputAdapter``). AudioSet is multi-label: train the logits with
    ``BCEWithLogitsLoss`` (one sigmoid per label), not a softmax.
    """

    task: Literal["audio_classification"] = "audio_classification"
    num_samples: int = Field(30720, ge=1, description="waveform length T (48 kHz: 0.64 s)")
    samples_per_patch: int = Field(16, ge=1)
    num_audio_channels: int = Field(1, ge=1)
    num_frequency_bands: int = Field(64, ge=1)
    max_resolution: int | None = Field(
        None, ge=1, description="highest Fourier band at max_resolution / 2 (default: patches)"
    )
    num_classes: int = Field(527, ge=2, description="AudioSet has 527 labels")
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()

    @model_validator(mode="after")
    def _patches_divide(self) -> AudioClassifierConfig:
        if self.num_samples % self.samples_per_patch:
            raise ValueError(
                f"samples_per_patch={self.samples_per_patch} must divide "
                f"num_samples={self.num_samples}"
            )
        return self


class VideoClassifierConfig(StrictModel):
    """Perceiver IO video classifier: (B, T, H, W, C) clips -> (B, num_classes) logits.

    Space-time patches with 3D Fourier features (``VideoInputAdapter``).
    """

    task: Literal["video_classification"] = "video_classification"
    video_shape: tuple[int, int, int, int] = Field(
        (16, 224, 224, 3), description="(frames T, height H, width W, channels C)"
    )
    patch_shape: tuple[int, int, int] = Field((1, 4, 4), description="(t, h, w) per position")
    num_frequency_bands: int = Field(32, ge=1)
    max_resolution: tuple[int, int, int] | None = Field(
        None, description="highest Fourier band per axis at max_resolution / 2 (default: grid)"
    )
    mean: tuple[float, ...] | None = Field(None, description="per-channel mean (with std)")
    std: tuple[float, ...] | None = Field(None, description="per-channel std (with mean)")
    channels_first: bool = Field(False, description="take (B, T, C, H, W) clips")
    num_classes: int = Field(..., ge=2)
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()

    @model_validator(mode="after")
    def _patches_divide(self) -> VideoClassifierConfig:
        if min(self.video_shape) < 1 or min(self.patch_shape) < 1:
            raise ValueError(
                f"video_shape={self.video_shape} and patch_shape={self.patch_shape} must be "
                "positive"
            )
        if any(n % p for n, p in zip(self.video_shape[:3], self.patch_shape, strict=True)):
            raise ValueError(
                f"patch_shape={self.patch_shape} must divide (T, H, W)={self.video_shape[:3]}"
            )
        channels = self.video_shape[3]
        if (self.mean is None) != (self.std is None) or (
            self.mean is not None
            and self.std is not None
            and (len(self.mean) != channels or len(self.std) != channels)
        ):
            raise ValueError(
                f"mean={self.mean} and std={self.std}: give both or neither, one entry per "
                f"channel ({channels})"
            )
        return self


class PointCloudClassifierConfig(StrictModel):
    """Perceiver point-cloud classifier (ModelNet40): (B, N, 3) points -> (B, num_classes).

    Each point is its xyz coordinates plus their Fourier features
    (``PointCloudInputAdapter``); any number of points N, in any order.
    """

    task: Literal["point_cloud_classification"] = "point_cloud_classification"
    num_frequency_bands: int = Field(64, ge=1)
    max_resolution: int = Field(
        1120, ge=1, description="highest Fourier band at max_resolution / 2, every axis"
    )
    num_classes: int = Field(40, ge=2, description="ModelNet40 has 40 classes")
    encoder: EncoderConfig = EncoderConfig()
    decoder: ClassificationDecoderConfig = ClassificationDecoderConfig()


TaskConfig = (
    ImageClassifierConfig
    | MaskedLMConfig
    | SequenceClassifierConfig
    | OpticalFlowConfig
    | AudioClassifierConfig
    | VideoClassifierConfig
    | PointCloudClassifierConfig
)


def load_task_config(path: str | Path) -> BaseModel:
    """Read a YAML (or JSON) task config, choosing the config class by its ``task`` field.

    The shipped configs are in ``perceiver/configs`` (``shipped_configs()``).
    """
    import yaml

    from perceiver.portable import config_from_dict  # the task registry; imported lazily

    file = Path(path)
    data = yaml.safe_load(file.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a mapping with a 'task' key, got {type(data).__name__}")
    return config_from_dict(data)


CONFIGS_DIR = Path(__file__).parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """Name (file stem) -> path of every YAML config shipped in ``perceiver/configs``."""
    return {p.stem: p for p in sorted(CONFIGS_DIR.glob("*.yaml"))}
