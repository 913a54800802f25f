"""Optical flow (AutoFlow, FlyingChairs, Sintel, KITTI): frame pairs -> per-pixel (u, v).

Shards: ``frames`` uint8 (2, H, W, 3), ``flow`` float32 (H, W, 2) in pixels, ``valid`` uint8
(H, W) (``preprocess --modality autoflow``). The model takes the frames as they are and builds
the 3x3 patches itself (``perceiver.adapters.flow``). Augmentation, on the worker: one random
crop of the model's ``image_size``, the same window of both frames, the flow and the mask (a
translation changes no flow vector); evaluation takes the central crop. Loss: mean end-point
error over the valid pixels. Metrics (KITTI 2015's): ``val_epe`` (promotion, lower wins),
``val_1px``, ``val_3px``, ``val_5px``, ``val_fl_all``. Pictures: both frames, the
ground-truth and the predicted flow in the Middlebury colour coding, side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from perceiver.config import OpticalFlowConfig
from perceiver.config.base import StrictModel
from pipelines.config.sections import PipelineConfigBase
from pipelines.metrics import flow as flow_metrics
from pipelines.tasks.base import Batch, Records, Task, center_crop_axes, random_crop
from preprocessing.config import AutoflowPreprocessConfig


class FlowAugment(StrictModel):
    random_crop: bool = Field(
        True, description="train on random crops of the model's size (frames and flow aligned)"
    )


class OpticalFlowPipelineConfig(PipelineConfigBase):
    task: Literal["optical_flow"] = "optical_flow"
    model: OpticalFlowConfig
    preprocess: AutoflowPreprocessConfig = AutoflowPreprocessConfig()
    augment: FlowAugment = FlowAugment()

    @model_validator(mode="after")
    def _model_fits_the_shards(self) -> OpticalFlowPipelineConfig:
        height, width = self.model.image_size
        if self.model.num_frames != 2 or self.model.num_image_channels != 3:
            raise ValueError(
                f"model.num_frames={self.model.num_frames}, num_image_channels="
                f"{self.model.num_image_channels}: the shards hold pairs of RGB frames"
            )
        if height > self.preprocess.height or width > self.preprocess.width:
            raise ValueError(
                f"model.image_size={self.model.image_size} is larger than the shards' "
                f"{self.preprocess.height}x{self.preprocess.width} frames (preprocess.height, "
                "preprocess.width)"
            )
        return self


class OpticalFlow(Task):
    name: ClassVar[str] = "optical_flow"
    modality: ClassVar[str] = "autoflow"
    columns: ClassVar[dict[str, str]] = {"frames": "uint8", "flow": "float32", "valid": "uint8"}
    metric: ClassVar[str] = "val_epe"
    higher_is_better: ClassVar[bool] = False
    config: ClassVar[type[Any]] = OpticalFlowPipelineConfig
    input_column: ClassVar[str | None] = "frames"

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.cfg.model.image_size
        return height, width

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:
        stored = (manifest.config.get("height"), manifest.config.get("width"))
        if None not in stored and (self.size[0] > stored[0] or self.size[1] > stored[1]):
            raise ValueError(
                f"model.image_size={self.size} but the shards in {shards!r} hold "
                f"{stored[0]}x{stored[1]} frames"
            )

    def input_positions(self) -> int:
        return self.size[0] * self.size[1]

    def input_crop(self) -> dict[int, int]:
        return {2: self.size[0], 3: self.size[1]}  # (B, 2, H, W, 3)

    def eval_inputs(self, batch: Batch) -> Batch:
        h, w = self.size
        return {
            **batch,
            "frames": center_crop_axes(batch["frames"], {2: h, 3: w}),
            "flow": center_crop_axes(batch["flow"], {1: h, 2: w}),
            "valid": center_crop_axes(batch["valid"], {1: h, 2: w}),
        }

    def train_inputs(self, batch: Batch, rng: np.random.Generator) -> Batch:
        if not self.cfg.augment.random_crop:
            return self.eval_inputs(batch)
        out: dict[str, list[np.ndarray]] = {"frames": [], "flow": [], "valid": []}
        for frames, flow, valid in zip(batch["frames"], batch["flow"], batch["valid"], strict=True):
            # One window for all three: frames (2, H, W, 3) cut on axes 1, 2 like flow (H, W, 2)
            # and valid (H, W) on axes 0, 1, so move the frames' pair axis last for the cut.
            pair = np.moveaxis(frames, 0, -1)  # (H, W, 3, 2)
            pair, flow, valid = random_crop([pair, flow, valid], self.size, rng, axes=(0, 1))
            out["frames"].append(np.moveaxis(pair, -1, 0))
            out["flow"].append(flow)
            out["valid"].append(valid)
        return {**batch, **{k: np.stack(v) for k, v in out.items()}}

    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        return batch["frames"]  # (B, 2, H, W, 3) uint8

    def loss(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(self.model_inputs(batch)).float()  # (B, H, W, 2) pixels
        valid = batch["valid"].bool()  # (B, H, W)
        epe = (pred - batch["flow"].float()).square().sum(-1).add(1e-12).sqrt()  # (B, H, W)
        loss = epe[valid].mean() if valid.any() else epe.sum() * 0.0
        return loss, {}

    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Records:
        pred = model(self.model_inputs(batch)).float().numpy()  # (B, H, W, 2)
        flow, valid = batch["flow"].numpy(), batch["valid"].numpy()
        sums = np.stack(
            [flow_metrics.flow_sums(p, f, v) for p, f, v in zip(pred, flow, valid, strict=True)]
        )
        return {"sums": sums}  # (B, 6)

    def metrics(self, records: Records) -> dict[str, float]:
        result = flow_metrics.flow_metrics(records["sums"].sum(axis=0))
        return {f"val_{name}": value for name, value in result.items()}

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        from pipelines.figures.flow import flow_panels_png

        pred = torch.as_tensor(outputs).float().numpy()
        epe = [
            flow_metrics.flow_metrics(flow_metrics.flow_sums(p, f, v))["epe"]
            if v.any()
            else float("nan")
            for p, f, v in zip(pred, examples["flow"], examples["valid"], strict=True)
        ]
        panels = flow_panels_png(examples["frames"], examples["flow"], pred, examples["valid"], epe)
        return {"flow_val.png": panels}
