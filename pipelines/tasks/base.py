"""What one task plugs into the one trainer and the one evaluator.

A task (one module per task in this package) declares:

- ``columns``: the shard columns it reads, with the numpy dtype of each;
- its pipeline config class (``config``): the shared sections plus its ``model`` (built by
  ``perceiver.builders``), ``preprocess`` and, where it has them, ``loss`` and ``augment``;
- ``train_inputs`` / ``eval_inputs``: augmentation and evaluation transforms of a numpy batch,
  run on the worker's reader thread;
- ``loss``: the forward pass and the loss of a training batch;
- ``predict`` and ``metrics``: per-row records of a scored batch, and the metrics of all of a
  split's records (records from every rank or Ray Data actor are concatenated first, so a
  metric is computed once over the whole split);
- ``metric`` and ``higher_is_better``: what promotion compares, in which direction;
- ``pictures``: the PNGs (and other files) that ``evaluate`` logs to MLflow.

The trainer (``pipelines.training``) and evaluator (``pipelines.evaluation``) never branch on
the task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

Batch = dict[str, np.ndarray]
Records = dict[str, np.ndarray]


class Task(ABC):
    name: ClassVar[str]
    modality: ClassVar[str]  # the shards' manifest modality
    columns: ClassVar[dict[str, str]]  # shard column -> numpy dtype it is read as
    metric: ClassVar[str]  # promotion metric, e.g. "val_top1"
    higher_is_better: ClassVar[bool]
    config: ClassVar[type[Any]]  # the task's pipeline config class

    def __init__(self, cfg: Any) -> None:
        if not isinstance(cfg, self.config):
            raise ValueError(
                f"{self.name} takes a {self.config.__name__}, got {type(cfg).__name__}"
            )
        self.cfg = cfg

    # -- shards and model ---------------------------------------------------------------

    def check_shards(self, manifest: Any, shards: str) -> None:
        """ValueError naming both sides when the shards cannot feed this task's model."""
        if manifest.modality != self.modality:
            raise ValueError(
                f"task {self.name} trains on {self.modality!r} shards, but {shards!r} holds "
                f"{manifest.modality!r} shards (preprocessed with --modality "
                f"{manifest.modality})"
            )
        schema = manifest.schema_
        missing = [c for c in self.columns if c not in schema]
        if missing:
            raise ValueError(
                f"task {self.name} reads the columns {missing}, which the shards in {shards!r} "
                f"do not have (their columns: {sorted(schema)})"
            )
        self.check_shard_shapes(manifest, shards)

    def check_classes(self, manifest: Any, shards: str) -> None:
        """The model's class count must be the label map's."""
        classes = len(manifest.label_map)
        if self.cfg.model.num_classes != classes:
            raise ValueError(
                f"model.num_classes={self.cfg.model.num_classes} but the shards in {shards!r} "
                f"have {classes} classes in their label map"
            )

    def check_shard_shapes(self, manifest: Any, shards: str) -> None:  # noqa: B027
        """Task-specific checks: class counts against the label map, frame sizes, ...
        (none by default)."""

    def build_model(self) -> nn.Module:
        from perceiver.builders import build

        return build(self.cfg.model)

    @property
    def model_name(self) -> str:
        return str(self.cfg.tracking.model_name or f"perceiver-{self.name}")

    @abstractmethod
    def input_positions(self) -> int:
        """Input positions the encoder attends to per example (for positions/s)."""

    # -- batches -------------------------------------------------------------------------

    def train_inputs(self, batch: Batch, rng: np.random.Generator) -> Batch:
        """A training batch after augmentation (default: as it is)."""
        return batch

    input_column: ClassVar[str | None] = None  # the column the model takes (None: a dict)

    def input_crop(self) -> dict[int, int]:
        """{axis: size} of the model's input column (batch axis 0) that stored examples are
        center-cropped to for scoring, when the shards store them larger than the model's
        input; the logged model does the same (``PortableModel(input_crop=...)``)."""
        return {}

    def eval_inputs(self, batch: Batch) -> Batch:
        """A batch to score: the input column center-cropped per ``input_crop``."""
        crop = self.input_crop()
        if not crop or self.input_column is None:
            return batch
        return {**batch, self.input_column: center_crop_axes(batch[self.input_column], crop)}

    @abstractmethod
    def model_inputs(self, batch: Mapping[str, Any]) -> Any:
        """What the model is called with, from a batch (of tensors, or numpy arrays)."""

    # -- training --------------------------------------------------------------------------

    @abstractmethod
    def loss(
        self, model: nn.Module, batch: Mapping[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """(scalar loss, {stat: value summed over the batch}) of a training batch."""

    # -- evaluation ------------------------------------------------------------------------

    @abstractmethod
    def predict(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Records:
        """Per-row records of a scored batch (numpy, first axis = rows)."""

    @abstractmethod
    def metrics(self, records: Records) -> dict[str, float]:
        """The ``val_*`` metrics of a whole split's records."""

    def outputs(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        """The model's output on a batch to score, as the pictures show it."""
        return model(self.model_inputs(batch))

    def pictures(
        self, examples: Batch, outputs: Any, records: Records, label_names: list[str]
    ) -> dict[str, bytes]:
        """File name -> bytes of what ``evaluate`` logs to MLflow (default: nothing).

        ``examples`` are the first rows of the split (after ``eval_inputs``), ``outputs`` the
        model's output on them (``outputs``).
        """
        return {}


def to_tensors(batch: Batch, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """numpy columns -> tensors on ``device`` (copies, so read-only Arrow buffers are fine)."""
    return {name: torch.from_numpy(np.array(value)).to(device) for name, value in batch.items()}


def random_crop(
    arrays: list[np.ndarray], size: tuple[int, int], rng: np.random.Generator, axes: tuple[int, int]
) -> list[np.ndarray]:
    """The same random (h, w) window of every array in ``arrays``, cut along ``axes``.

    All arrays share the spatial size on those axes (frames and their flow, say), so the
    window stays aligned across them.
    """
    height, width = arrays[0].shape[axes[0]], arrays[0].shape[axes[1]]
    h, w = size
    if h > height or w > width:
        raise ValueError(f"crop {size} is larger than the stored {(height, width)}")
    top = int(rng.integers(0, height - h + 1))
    left = int(rng.integers(0, width - w + 1))
    out = []
    for a in arrays:
        index = [slice(None)] * a.ndim
        index[axes[0]] = slice(top, top + h)
        index[axes[1]] = slice(left, left + w)
        out.append(a[tuple(index)])
    return out


def center_crop_axes(array: np.ndarray, crop: Mapping[int, int]) -> np.ndarray:
    """The central ``size`` positions along each ``axis`` of ``crop`` (as the logged model's
    ``input_crop`` does); ValueError if the array is smaller there."""
    index = [slice(None)] * array.ndim
    for axis, size in crop.items():
        length = array.shape[axis]
        if size > length:
            raise ValueError(f"crop to {size} along axis {axis}, but the array has {length}")
        start = (length - size) // 2
        index[axis] = slice(start, start + size)
    return array[tuple(index)]
