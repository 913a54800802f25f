"""The video and Kinetics preprocessing jobs: clip folders -> Parquet shards + manifest.

Two plug-ins for the generic job (``preprocessing.engine``, which documents planning,
incremental runs, quarantine and the manifest), both decoding with ``preprocessing.video``:

- ``video``: class folders of clips ``<input>/{train,val}/<label>/<clip>.{mp4,avi,mkv,webm}``
  (the ImageNet scan, ``preprocessing.layouts.imagenet``, with video extensions); shard schema
  ``frames, label, label_name, num_decoded_frames, fps, frame_times, source, key``.
- ``kinetics``: Kinetics-700-2020 CSVs and clips (``preprocessing.layouts.kinetics``); frames
  at a fixed rate and the audio over the same span; schema ``frames, audio, audio_present,
  label, label_name, youtube_id, time_start, time_end, num_decoded_frames, fps, frame_times,
  source, key``. The manifest's ``row_flags`` counts ``audio_missing`` and ``audio_silent``
  rows (and, for both modalities, ``short_clip`` rows) per split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.config import KineticsPreprocessConfig, VideoPreprocessConfig
from preprocessing.engine import run_preprocessing
from preprocessing.layouts.imagenet import SPLITS as CLASS_FOLDER_SPLITS
from preprocessing.layouts.imagenet import scan_imagenet
from preprocessing.layouts.kinetics import SPLITS as KINETICS_SPLITS
from preprocessing.layouts.kinetics import scan_kinetics
from preprocessing.manifest import Manifest
from preprocessing.modality import ModalitySpec
from preprocessing.records import ScanResult
from preprocessing.video import VIDEO_EXTENSIONS, decode_audio_visual, decode_video

_FLAGS = "_flags"  # a decoded row's flag names; consumed by ``row_flags``, never written


def _frames_doc(t: int, s: int) -> str:
    return f"fixed_shape_tensor<uint8>[{t}, {s}, {s}, 3] (THWC, RGB)"


def row_flags(row: Mapping[str, Any]) -> Iterable[str]:
    return row.get(_FLAGS, ())


def decode_video_row(
    data: bytes, item: Mapping[str, Any], config: VideoPreprocessConfig
) -> dict[str, Any]:
    """One clip's bytes and scan record -> its row's columns (``preprocessing.video``)."""
    v = decode_video(
        data, config.num_frames, config.frame_stride, config.size, config.temporal_crop
    )
    return {
        "frames": v.frames,
        "label": int(item["label"]),
        "label_name": item["wnid"],
        "num_decoded_frames": v.num_decoded,
        "fps": v.fps,
        "frame_times": v.frame_times,
        _FLAGS: v.flags,
    }


def video_spec(config: VideoPreprocessConfig) -> ModalitySpec:
    t, s = config.num_frames, config.size
    return ModalitySpec(
        name="video",
        splits=CLASS_FOLDER_SPLITS,
        columns=pa.schema(
            [
                ("frames", pa.fixed_shape_tensor(pa.uint8(), [t, s, s, 3])),
                ("label", pa.int64()),
                ("label_name", pa.string()),
                ("num_decoded_frames", pa.int64()),
                ("fps", pa.float64()),
                ("frame_times", pa.list_(pa.float64())),
            ]
        ),
        columns_doc={
            "frames": _frames_doc(t, s) + f", every {config.frame_stride} frames, "
            f"{config.temporal_crop} span, nearest pts",
            "label": "int64 (index of label_name in the sorted class folders)",
            "label_name": "string (class folder name)",
            "num_decoded_frames": "int64 (frames decoded from the whole clip)",
            "fps": "float64 (the video stream's average frame rate)",
            "frame_times": "list<float64> (presentation time of each frame taken, seconds)",
        },
        decode=partial(decode_video_row, config=config),
        label_source="the class folders",
        row_flags=row_flags,
    )


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
        _FLAGS: v.flags,
    }


def kinetics_spec(config: KineticsPreprocessConfig) -> ModalitySpec:
    t, s, n = config.num_frames, config.size, config.audio_samples
    return ModalitySpec(
        name="kinetics",
        splits=KINETICS_SPLITS,
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
            "frames": _frames_doc(t, s) + f", {config.target_fps} fps, stride "
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
        row_flags=row_flags,
    )


def preprocess_video(
    input_dir: Path,
    output_dir: Path,
    config: VideoPreprocessConfig | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Run the video preprocessing job on the connected Ray cluster; returns the manifest."""
    config = config or VideoPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_imagenet(
        input_root,
        extensions=VIDEO_EXTENSIONS,
        example="the class-folder layout <root>/{train,val}/<label>/<clip>.mp4",
    )
    return run_preprocessing(
        video_spec(config),
        ScanResult(items=scan.files, rejected=scan.rejected, label_map=scan.label_map),
        input_root,
        output_root,
        config,
        overwrite,
    )


def preprocess_kinetics(
    input_dir: Path,
    output_dir: Path,
    config: KineticsPreprocessConfig | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Run the Kinetics preprocessing job on the connected Ray cluster; returns the manifest."""
    config = config or KineticsPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_kinetics(input_root)
    spec = kinetics_spec(config)
    return run_preprocessing(spec, scan, input_root, output_root, config, overwrite)
