"""The audio preprocessing job: an AudioSet-layout folder -> Parquet shards + manifest.

The audio modality's plug-in for the generic job (``preprocessing.engine.run``, which documents
planning, incremental runs, quarantine and the manifest): the AudioSet scan
(``preprocessing.layouts.audioset``), the decode policy of ``preprocessing.decode.audio`` and the
shard schema ``audio, labels, label_indices, ytid, source, key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from preprocessing.config import AudioPreprocessConfig
from preprocessing.decode.audio import decode_audio
from preprocessing.engine.manifest import Manifest
from preprocessing.engine.run import ShardProgress, run_preprocessing
from preprocessing.engine.spec import ModalitySpec
from preprocessing.layouts.audioset import LABELS_FILE, SPLITS, scan_audioset


def decode_audio_row(
    data: bytes, item: Mapping[str, Any], config: AudioPreprocessConfig, num_classes: int
) -> dict[str, Any]:
    """One AudioSet file's bytes and scan record -> ``audio``, ``labels`` (multi-hot),
    ``label_indices`` and ``ytid``."""
    audio = decode_audio(
        data, str(item["source"]), config.sample_rate, config.window_samples, config.crop
    )
    indices = [int(i) for i in item["label_indices"]]
    multi_hot = np.zeros(num_classes, dtype=np.uint8)
    multi_hot[indices] = 1
    return {"audio": audio, "labels": multi_hot, "label_indices": indices, "ytid": item["ytid"]}


def audio_spec(config: AudioPreprocessConfig, num_classes: int) -> ModalitySpec:
    window, rate = config.window_samples, config.sample_rate
    return ModalitySpec(
        name="audio",
        splits=SPLITS,
        columns=pa.schema(
            [
                ("audio", pa.fixed_shape_tensor(pa.float32(), [window])),
                ("labels", pa.fixed_shape_tensor(pa.uint8(), [num_classes])),
                ("label_indices", pa.list_(pa.int64())),
                ("ytid", pa.string()),
            ]
        ),
        columns_doc={
            "audio": f"fixed_shape_tensor<float32>[{window}] (mono, {rate} Hz, "
            f"{config.crop} crop, zero-padded at the end)",
            "labels": f"fixed_shape_tensor<uint8>[{num_classes}] (multi-hot over label_map)",
            "label_indices": "list<int64> (sorted class indices of the positive labels)",
            "ytid": "string (YouTube ID of the segment)",
        },
        decode=partial(decode_audio_row, config=config, num_classes=num_classes),
        label_source=LABELS_FILE,
    )


def preprocess_audio(
    input_dir: Path,
    output_dir: Path,
    config: AudioPreprocessConfig | None = None,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Run the audio preprocessing job on the connected Ray cluster; returns the manifest.

    Processes only inputs the output's manifest does not list yet; ``overwrite`` starts afresh.
    """
    config = config or AudioPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_audioset(input_root)
    spec = audio_spec(config, len(scan.label_map))
    return run_preprocessing(spec, scan, input_root, output_root, config, overwrite, progress)
