"""One plug-in per ``--modality``, and the table of which config and which job each one uses.

Plug-ins (each a layout scan, a decode policy and a shard schema for the generic job,
``preprocessing.engine.run``): ``image`` (ImageNet folders), ``audio`` (AudioSet), ``video``
(class folders of clips: split folders, UCF-101/HMDB-51 split lists or a hashed val fraction),
``kinetics`` (Kinetics-700-2020, frames + audio) and ``autoflow`` (optical flow: AutoFlow,
FlyingChairs, Sintel, KITTI 2015). Each lives in the module of its name.

``run_modality("video", input, output, {"num_frames": 16})`` validates the options with the
modality's pydantic config (unknown options are refused there, by name) and runs its Ray Data
job on the connected cluster.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from preprocessing import config as configs
from preprocessing.engine.manifest import Manifest


@dataclass(frozen=True)
class Modality:
    config: type[BaseModel]
    job: str  # "module:function", imported when run (jobs import Ray)

    def job_function(self) -> Callable[..., Manifest]:
        module, name = self.job.split(":")
        job: Callable[..., Manifest] = getattr(importlib.import_module(module), name)
        return job


MODALITIES: dict[str, Modality] = {
    "image": Modality(
        configs.ImagePreprocessConfig, "preprocessing.modalities.image:preprocess_images"
    ),
    "audio": Modality(
        configs.AudioPreprocessConfig, "preprocessing.modalities.audio:preprocess_audio"
    ),
    "video": Modality(
        configs.VideoPreprocessConfig, "preprocessing.modalities.video:preprocess_video"
    ),
    "kinetics": Modality(
        configs.KineticsPreprocessConfig, "preprocessing.modalities.kinetics:preprocess_kinetics"
    ),
    "autoflow": Modality(
        configs.AutoflowPreprocessConfig, "preprocessing.modalities.autoflow:preprocess_flow"
    ),
}


def option_owners(option: str) -> list[str]:
    """The modalities whose config has ``option``."""
    return [m for m, spec in MODALITIES.items() if option in spec.config.model_fields]


def modality_config(modality: str, options: dict[str, Any]) -> BaseModel:
    """Validate ``options`` for ``modality``; an option of another modality is named."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(MODALITIES)}")
    cls = MODALITIES[modality].config
    foreign = sorted(k for k in options if k not in cls.model_fields)
    if foreign:
        described = ", ".join(
            f"--{k.replace('_', '-')} (an option of {', '.join(option_owners(k)) or 'nothing'})"
            for k in foreign
        )
        raise ValueError(f"not an option of --modality {modality}: {described}")
    try:
        return cls.model_validate({"modality": modality, **options})
    except ValidationError as exc:
        problems = "; ".join(
            (f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: " if e["loc"] else "")
            + e["msg"]
            for e in exc.errors()
        )
        raise ValueError(f"invalid options for --modality {modality}: {problems}") from exc


def run_modality(
    modality: str,
    input_dir: Path,
    output_dir: Path,
    options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Validate the options, then run the modality's preprocessing job; ``progress(done,
    total)`` follows its shard tasks."""
    config = modality_config(modality, options or {})
    job = MODALITIES[modality].job_function()
    return job(input_dir, output_dir, config, overwrite=overwrite, progress=progress)
