"""Kinetics multimodal autoencoding: video + audio + label in, all three reconstructed.

Shards: ``frames`` uint8 (T, S, S, 3), ``audio`` float32 (T * samples per frame,), ``label``
int64 (``preprocess --modality kinetics``). The model takes them as a dict, ``{"image":
frames, "audio": audio, "label": label}`` (the label as a class index).

Training (the Perceiver IO paper's): each step decodes a random subsample of the outputs,
``decode.train_pixels`` video pixels and ``decode.train_audio_samples`` audio samples (whole
audio patches), the same for every clip of the batch, and the label; the loss is
``loss.video_weight`` * L1(pixels in [0, 1]) + ``loss.audio_weight`` * L1(audio) +
``loss.label_weight`` * CE(label), 0.03, 1 and 1e-4 in the paper. The label input is masked
for a share of the training examples given by the model's ``mask_probs.label`` (the paper:
half), and always in evaluation, so the model then acts as a classifier.

Evaluation decodes every output of each clip, in ``decode.eval_chunks`` pieces of the
queries (``MultimodalAutoencoder.reconstruct``). Metrics: ``val_video_psnr`` (pixels in
[0, 1]), ``val_audio_psnr`` (samples in [-1, 1]), ``val_top1`` (label masked), ``val_loss``
(the training loss on whole clips; promotion, lower wins). Pictures: original and decoded
frames side by side, the decoded audio as WAV files and its waveform against the original.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from perceiver.config import MultimodalAutoencoderConfig
from perceiver.config.base import StrictModel
from pipelines.config.sections import PipelineConfigBase
from pipelines.metrics import classification as cls_metrics
from pipelines.metrics.reconstruction import AUDIO_RANGE, PIXEL_RANGE, psnr
from pipelines.tasks.base import Batch, Records, Task
from preprocessing.config import KineticsPreprocessConfig


class KineticsLoss(StrictModel):
    video_weight: float = Field(0.03, ge=0.0, description="weight of the pixels' L1")
    audio_weight: float = Field(1.0, ge=0.0, description="weight of the audio samples' L1")
    label_weight: float = Field(1e-4, ge=0.0, description="weight of the label's CE")


class KineticsDecode(StrictModel):
    train_pixels: int = Field(512, ge=1, description="video pixels decoded per training step")
    train_audio_samples: int = Field(
        512, ge=1, description="audio samples decoded per training step (whole patches)"
    )
    eval_chunks: int = Field(8, ge=1, description="pieces a whole clip is decoded in")


class KineticsAutoencodingConfig(PipelineConfigBase):
    task: Literal["kinetics_autoencoding"] = "kinetics_autoencoding"
    model: MultimodalAutoencoderConfig
    preprocess: KineticsPreprocessConfig = KineticsPreprocessConfig()
    loss: KineticsLoss = KineticsLoss()
    decode: KineticsDecode = KineticsDecode()

    @model_validator(mode="after")
    def _model_fits_the_shards(self) -> KineticsAutoencodingConfig:
        m, p = self.model, self.preprocess
        if (
            m.num_frames != p.num_frames
            or m.image_size != (p.size, p.size)
            or m.num_image_channels != 3
            or m.channels_first
        ):
            raise ValueError(
                f"model video (num_frames={m.num_frames}, image_size={m.image_size}, "
                f"channels_first={m.channels_first}) must be the shards' {p.num_frames} RGB "
                f"frames of {p.size}x{p.size} (preprocess.num_frames, preprocess.size)"
            )
        if m.num_audio_samples != p.audio_samples:
            raise ValueError(
                f"model audio of {m.num_audio_samples} samples (num_frames x "
                f"audio_samples_per_frame) but the shards hold {p.audio_samples}"
            )
        return self


class KineticsAutoencoding(Task):
    name: ClassVar[str] = "kinetics_autoencoding"
    modality: ClassVar[str] = "kinetics"
    columns: ClassVar[dict[str, str]] = {"frames": "uint8", "audio": "float32", "label": "int64"}
    metric: ClassVar[str] = "val_loss"
    higher_is_better: ClassVar[bool] = False
    config: ClassVar[type[Any]] = KineticsAutoencodingConfig

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        self.check_classes(manifest, shards)
        stored = (manifest.config.get("num_frames"), manifest.config.get("size"))
        model = (self.cfg.model.num_frames, self.cfg.model.image_size[0])
        if None not in stored and tuple(stored) != model:
            raise ValueError(
                f"model clips of {model[0]} frames of {model[1]}x{model[1]} but the shards in "
                f"{shards!r} hold {stored[0]} frames of {stored[1]}x{stored[1]}"
            )

    def input_positions(self) -> int:
        m = self.cfg.model
        t, (h, w) = m.num_frames, m.image_size
        pt, ph, pw = m.image_patch_shape
        return (t // pt) * (h // ph) * (w // pw) + m.num_audio_samples // m.samples_per_patch + 1

    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        return {"image": batch["frames"], "audio": batch["audio"], "label": batch["label"]}

    def _terms(
        self,
        out: Mapping[str, torch.Tensor],
        batch: Mapping[str, torch.Tensor],
        pixels: torch.Tensor | None,
        patches: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-row L1 of the decoded pixels and audio and CE of the label: each (B,)."""
        spp = self.cfg.model.samples_per_patch
        frames = batch["frames"]  # (B, T, H, W, 3) uint8
        image = frames.reshape(len(frames), -1, frames.shape[-1]).float() / 255.0  # (B, N, 3)
        audio = batch["audio"].float().reshape(len(frames), -1, spp)  # (B, P, spp)
        if pixels is not None:
            image = image[:, pixels]
        if patches is not None:
            audio = audio[:, patches]
        decoded_image = out["image"].float().reshape(image.shape)
        video_l1 = (decoded_image - image).abs().flatten(1).mean(1)
        audio_l1 = (out["audio"].float() - audio.flatten(1)).abs().mean(1)
        label_ce = F.cross_entropy(out["label"].float(), batch["label"].long(), reduction="none")
        return video_l1, audio_l1, label_ce

    def _weighted(self, terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        w = self.cfg.loss
        video, audio, label = terms
        return w.video_weight * video + w.audio_weight * audio + w.label_weight * label

    def loss(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        m, d = self.cfg.model, self.cfg.decode
        num_pixels = m.num_frames * m.image_size[0] * m.image_size[1]
        num_patches = m.num_audio_samples // m.samples_per_patch
        pixels = torch.randperm(num_pixels, generator=generator)[: d.train_pixels]
        wanted = math.ceil(d.train_audio_samples / m.samples_per_patch)
        patches = torch.randperm(num_patches, generator=generator)[:wanted]
        indices = {"image": pixels, "audio": patches, "label": None}
        out = model(self.model_inputs(batch), indices)
        terms = self._terms(out, batch, pixels, patches)
        stats = {
            "train_video_l1": float(terms[0].detach().sum()),
            "train_audio_l1": float(terms[1].detach().sum()),
        }
        return self._weighted(terms).mean(), stats

    def outputs(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        """Every output of every clip, decoded in ``decode.eval_chunks`` pieces."""
        autoencoder: Any = getattr(model, "model", model)  # a logged PortableModel wraps it
        return autoencoder.reconstruct(self.model_inputs(batch), self.cfg.decode.eval_chunks)

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Records:
        out = self.outputs(model, batch)  # image (B, T, H, W, 3), audio (B, S), label (B, K)
        terms = self._terms(out, batch, None, None)
        frames = batch["frames"].float().numpy() / 255.0
        logits = out["label"].float().numpy()
        return {
            "video_psnr": psnr(out["image"].float().numpy(), frames, PIXEL_RANGE),
            "audio_psnr": psnr(out["audio"].float().numpy(), batch["audio"].numpy(), AUDIO_RANGE),
            "label": batch["label"].long().numpy(),
            "top5": cls_metrics.top_k(logits, 5),
            "loss": self._weighted(terms).numpy(),
        }

    def metrics(self, records: Records) -> dict[str, float]:
        return {
            "val_video_psnr": float(records["video_psnr"].mean()),
            "val_audio_psnr": float(records["audio_psnr"].mean()),
            "val_top1": float((records["top5"][:, 0] == records["label"]).mean()),
            "val_loss": float(records["loss"].mean()),
        }

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        from pipelines.figures.audio import wav_bytes, waveforms_png
        from pipelines.figures.reconstruction import frames_side_by_side_png

        video = outputs["image"].float().numpy()  # (n, T, H, W, 3) in [0, 1]
        audio = outputs["audio"].float().numpy()  # (n, S)
        frames = examples["frames"]
        rate = self.cfg.preprocess.sample_rate
        video_psnr = psnr(video, frames.astype(np.float64) / 255.0, PIXEL_RANGE).tolist()
        files = {
            "reconstruction_val.png": frames_side_by_side_png(frames, video, video_psnr),
            "audio_val.png": waveforms_png(
                examples["audio"], audio, rate, "audio: original and decoded"
            ),
        }
        for i, clip in enumerate(audio):
            files[f"audio_val_{i}.wav"] = wav_bytes(clip, rate)
        return files
