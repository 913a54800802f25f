"""The video preprocessing job: class folders of clips -> Parquet shards + manifest.

The ``video`` modality's plug-in for the generic job (``preprocessing.engine.run``, which
documents planning, incremental runs, quarantine and the manifest): clips decoded by
``preprocessing.decode.video.decode_video``, shard schema ``frames, label, label_name,
num_decoded_frames, fps, frame_times, source, key``; the manifest's ``row_flags`` counts
``short_clip`` rows per split. Two layouts (``scan_video``):

- split folders ``<input>/{train,val}/<label>/<clip>.{mp4,avi,mkv,webm}``, read when the input
  has a ``train/`` or ``val/`` folder: the ImageNet scan (``preprocessing.layouts.imagenet``)
  with video extensions;
- plain class folders ``<input>/<label>/<clip>`` (UCF-101, HMDB-51): the official split lists
  when present (``split_number``), else a stable hashed ``val_fraction``
  (``preprocessing.layouts.class_folders``).

The manifest's ``split_rule`` records which rule put the clips in their splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.config import VideoPreprocessConfig
from preprocessing.decode.video import VIDEO_EXTENSIONS, decode_video
from preprocessing.engine.manifest import Manifest
from preprocessing.engine.records import ScanResult
from preprocessing.engine.run import ShardProgress, run_preprocessing
from preprocessing.engine.spec import FLAGS_KEY, ModalitySpec, flags_in_row
from preprocessing.layouts import class_folders, imagenet

SPLIT_FOLDERS_RULE = "split folders: <input>/{train,val}/<label>/<clip>"


def frames_doc(t: int, s: int) -> str:
    return f"fixed_shape_tensor<uint8>[{t}, {s}, {s}, 3] (THWC, RGB)"


def scan_video(root: Path, config: VideoPreprocessConfig) -> ScanResult:
    """Split folders when ``root`` has ``train/`` or ``val/``, else plain class folders."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    if any((root / split).is_dir() for split in imagenet.SPLITS):
        scan = imagenet.scan_imagenet(
            root,
            extensions=VIDEO_EXTENSIONS,
            example="the class-folder layout <root>/{train,val}/<label>/<clip>.mp4",
        )
        return ScanResult(
            items=scan.files,
            rejected=scan.rejected,
            label_map=scan.label_map,
            split_rule=SPLIT_FOLDERS_RULE,
        )
    return class_folders.scan_class_folders(
        root, VIDEO_EXTENSIONS, config.val_fraction, config.split_number
    )


def decode_video_row(
    data: bytes, item: Mapping[str, Any], config: VideoPreprocessConfig
) -> dict[str, Any]:
    """One clip's bytes and scan record -> its row's columns (``preprocessing.decode.video``)."""
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
        FLAGS_KEY: v.flags,
    }


def video_spec(config: VideoPreprocessConfig) -> ModalitySpec:
    t, s = config.num_frames, config.size
    return ModalitySpec(
        name="video",
        splits=class_folders.SPLITS,
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
            "frames": frames_doc(t, s) + f", every {config.frame_stride} frames, "
            f"{config.temporal_crop} span, nearest pts",
            "label": "int64 (index of label_name in the sorted class folders, or its "
            "classInd.txt index - 1)",
            "label_name": "string (class folder name)",
            "num_decoded_frames": "int64 (frames decoded from the whole clip)",
            "fps": "float64 (the video stream's average frame rate)",
            "frame_times": "list<float64> (presentation time of each frame taken, seconds)",
        },
        decode=partial(decode_video_row, config=config),
        label_source="the class folders (or classInd.txt)",
        row_flags=flags_in_row,
    )


def preprocess_video(
    input_dir: Path,
    output_dir: Path,
    config: VideoPreprocessConfig | None = None,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Run the video preprocessing job on the connected Ray cluster; returns the manifest.

    Processes only inputs the output's manifest does not list yet; ``overwrite`` starts afresh.
    """
    config = config or VideoPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    scan = scan_video(input_root, config)
    return run_preprocessing(
        video_spec(config), scan, input_root, output_root, config, overwrite, progress
    )
