"""The Kinetics preprocessing job: Kinetics-700-2020 CSVs and clips -> Parquet shards + manifest.

The ``kinetics`` modality's plug-in for the generic job (``preprocessing.engine.run``, which
documents planning, incremental runs, quarantine and the manifest): the Kinetics scan
(``preprocessing.layouts.kinetics``), frames at a fixed rate and the audio over the same span
(``preprocessing.decode.video.decode_audio_visual``) and the shard schema ``frames, audio,
audio_present, label, label_name, youtube_id, time_start, time_end, num_decoded_frames, fps,
frame_times, source, key``. The manifest's ``row_flags`` counts ``audio_missing``,
``audio_silent`` and ``short_clip`` rows per split.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.config import KineticsPreprocessConfig
from preprocessing.decode.video import decode_audio_visual
from preprocessing.engine.manifest import Manifest
from preprocessing.engine.run import ShardProgress, run_preprocessing
from preprocessing.engine.spec import FLAGS_KEY, ModalitySpec, flags_in_row
from preprocessing.layouts.kinetics import SPLITS, scan_kinetics
from preprocessing.modalities.video import frames_doc


def decode_kinetics_row(
    data: bytes, item: Mapping[str, Any], config: KineticsPreprocessConfig
) -> dict[str, Any]:
    """One Kinetics clip's bytes and scan record -> its row's columns."""
    v = decode_audio_visual(
        data,
        config.num_frames,
        config.frame_stride,
        config.target_fps,
        config.size,
        config.sample_rate,
        config.temporal_crop,
    )
    return {
        "frames": v.frames,
        "audio": v.audio,
        "audio_present": v.audio_status == "ok",
        "label": int(item["label"]),
        "label_name": item["label_name"],
        "youtube_id": item["youtube_id"],
        "time_start": int(item["time_start"]),
        "time_end": int(item["time_end"]),
        "num_decoded_frames": v.num_decoded,
        "fps": v.fps,
        "frame_times": v.frame_times,
        FLAGS_KEY: v.flags,
    }


def kinetics_spec(config: KineticsPreprocessConfig) -> ModalitySpec:
    t, s, n = config.num_frames, config.size, config.audio_samples
    return ModalitySpec(
        name="kinetics",
        splits=SPLITS,
        columns=pa.schema(
            [
                ("frames", pa.fixed_shape_tensor(pa.uint8(), [t, s, s, 3])),
                ("audio", pa.fixed_shape_tensor(pa.float32(), [n])),
                ("audio_present", pa.bool_()),
                ("label", pa.int64()),
                ("label_name", pa.string()),
                ("youtube_id", pa.string()),
                ("time_start", pa.int64()),
                ("time_end", pa.int64()),
                ("num_decoded_frames", pa.int64()),
                ("fps", pa.float64()),
                ("frame_times", pa.list_(pa.float64())),
            ]
        ),
        columns_doc={
            "frames": frames_doc(t, s) + f", {config.target_fps} fps, stride "
            f"{config.frame_stride}, {config.temporal_crop} span, nearest pts",
            "audio": f"fixed_shape_tensor<float32>[{n}] (mono, {config.sample_rate} Hz, the "
            "frames' span; zeros when audio_present is false)",
            "audio_present": "bool (false: no audio stream, or an all-zero one)",
            "label": "int64 (index of label_name in the sorted labels of the train rows)",
            "label_name": "string (the CSV's label)",
            "youtube_id": "string",
            "time_start": "int64 (seconds, from the CSV)",
            "time_end": "int64 (seconds, from the CSV)",
            "num_decoded_frames": "int64 (frames decoded from the whole clip)",
            "fps": "float64 (the video stream's average frame rate)",
            "frame_times": "list<float64> (presentation time of each frame taken, seconds)",
        },
        decode=partial(decode_kinetics_row, config=config),
        label_source="the labels of the Kinetics CSVs",
        row_flags=flags_in_row,
    )


def preprocess_kinetics(
    input_dir: Path,
    output_dir: Path,
    config: KineticsPreprocessConfig | None = None,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Run the Kinetics preprocessing job on the connected Ray cluster; returns the manifest."""
    config = config or KineticsPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_kinetics(input_root)
    spec = kinetics_spec(config)
    return run_preprocessing(spec, scan, input_root, output_root, config, overwrite, progress)
