"""Config of the Perceiver IO multimodal (Kinetics audio + video + label) autoencoder.

The defaults are the paper's Kinetics-700 model (Hugging Face's
``PerceiverForMultimodalAutoencoding``): 16 frames of 224x224 RGB in 1x4x4 patches with 32
Fourier bands, 30720 audio samples (16 frames x 1920 samples, 48 kHz) in patches of 16 with
192 bands, a 700-class label; the encoder sizes are set in ``perceiver/config/presets``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from perceiver.config.base import StrictModel
from perceiver.config.blocks import EncoderConfig, MultimodalDecoderConfig

MODALITIES = ("audio", "image", "label")
"""The modalities, in the order their positions are concatenated (as Hugging Face's)."""


class MultimodalAutoencoderConfig(StrictModel):
    """{"audio": (B, S) or (B, S, 1), "image": (B, T, H, W, C), "label": (B, K)} -> outputs.

    Outputs: ``audio`` (B, n_a * samples_per_patch) samples, ``image`` (B, n_i, C) pixels,
    ``label`` (B, K) logits, for the decoded outputs (see ``MultimodalAutoencoder``). The
    video is decoded per pixel on the (T, H, W) grid, the audio per patch.
    """

    task: Literal["multimodal_autoencoding"] = "multimodal_autoencoding"
    num_frames: int = Field(16, ge=1)
    image_size: tuple[int, int] = Field((224, 224), description="(height, width)")
    num_image_channels: int = Field(3, ge=1)
    image_patch_shape: tuple[int, int, int] = Field((1, 4, 4), description="(t, h, w)")
    image_num_frequency_bands: int = Field(32, ge=1)
    image_max_resolution: tuple[int, int, int] | None = Field(
        None, description="highest Fourier band per axis / 2 (default: (T, H, W))"
    )
    channels_first: bool = Field(False, description="take (B, T, C, H, W) video")
    audio_samples_per_frame: int = Field(1920, ge=1)
    samples_per_patch: int = Field(16, ge=1)
    audio_num_frequency_bands: int = Field(192, ge=1)
    audio_max_resolution: int | None = Field(
        None, ge=1, description="highest Fourier band / 2 (default: the number of samples)"
    )
    num_classes: int = Field(700, ge=1)
    min_padding_size: int = Field(4, ge=0, description="input padding beyond the widest")
    mask_probs: dict[str, float] = Field(
        default_factory=lambda: {"audio": 0.0, "image": 0.0, "label": 1.0},
        description="training: probability that an input position is replaced by its "
        "modality's mask token",
    )
    eval_masked: tuple[str, ...] = Field(
        ("label",), description="modalities replaced by their mask token in eval mode"
    )
    encoder: EncoderConfig = EncoderConfig()
    decoder: MultimodalDecoderConfig = MultimodalDecoderConfig()

    @property
    def num_audio_samples(self) -> int:
        return self.num_frames * self.audio_samples_per_frame

    @property
    def video_shape(self) -> tuple[int, int, int, int]:
        height, width = self.image_size
        return self.num_frames, height, width, self.num_image_channels

    @model_validator(mode="after")
    def _shapes_fit(self) -> MultimodalAutoencoderConfig:
        if min(self.image_size) < 1 or min(self.image_patch_shape) < 1:
            raise ValueError(
                f"image_size={self.image_size} and image_patch_shape={self.image_patch_shape} "
                "must be positive"
            )
        grid = self.video_shape[:3]
        if any(n % p for n, p in zip(grid, self.image_patch_shape, strict=True)):
            raise ValueError(
                f"image_patch_shape={self.image_patch_shape} must divide (T, H, W)={grid}"
            )
        if self.num_audio_samples % self.samples_per_patch:
            raise ValueError(
                f"samples_per_patch={self.samples_per_patch} must divide the "
                f"{self.num_audio_samples} audio samples"
            )
        return self

    @model_validator(mode="after")
    def _masks_fit(self) -> MultimodalAutoencoderConfig:
        for name in [*self.mask_probs, *self.eval_masked]:
            if name not in MODALITIES:
                raise ValueError(f"masked modality {name!r} is not one of {MODALITIES}")
        for name, prob in self.mask_probs.items():
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"mask_probs[{name!r}]={prob} must be in [0, 1]")
        return self
