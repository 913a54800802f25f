"""The optical-flow (``autoflow``) preprocessing job: frame pairs + flow -> Parquet shards.

The ``autoflow`` modality's plug-in for the generic job (``preprocessing.engine.run``, which
documents planning, incremental runs, quarantine and the manifest): the layout scans of
``preprocessing.layouts.flow`` (AutoFlow, FlyingChairs, Sintel, KITTI 2015), the decode and
geometry policy of ``preprocessing.decode.flow`` and the shard schema ``frames, flow, valid,
orig_height, orig_width, frame2, flow_file, source, key``.

One input is one sample (frame pair + flow); ``source`` is frame 1, read by the generic shard
task; the decoder reads frame 2 and the flow file itself (a failure to read them is stage
``read``). ``key`` hashes all three files. ``row_flags`` counts ``resized`` rows (upscaled
because the input was smaller than the target) and ``invalid_pixels`` rows (some flow unknown).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from preprocessing.config import AutoflowPreprocessConfig
from preprocessing.decode.flow import FlowDecodeError, decode_flow_sample
from preprocessing.engine.manifest import Manifest
from preprocessing.engine.run import ShardProgress, run_preprocessing
from preprocessing.engine.spec import FLAGS_KEY, ModalitySpec, flags_in_row
from preprocessing.layouts.flow import SPLITS, scan_flow


def decode_flow_row(
    data: bytes, item: Mapping[str, Any], config: AutoflowPreprocessConfig, root: str
) -> dict[str, Any]:
    """Frame 1's bytes and the sample's scan record -> the row's columns."""
    partners = {}
    for field in ("frame2", "flow"):
        try:
            partners[field] = (Path(root) / item[field]).read_bytes()
        except OSError as exc:
            raise FlowDecodeError("read", f"{item[field]}: {type(exc).__name__}: {exc}") from exc
    s = decode_flow_sample(
        data,
        partners["frame2"],
        partners["flow"],
        item["flow_format"],
        config.height,
        config.width,
        names=(str(item["source"]), str(item["frame2"]), str(item["flow"])),
    )
    return {
        "frames": s.fitted.frames,
        "flow": s.fitted.flow,
        "valid": s.fitted.valid,
        "orig_height": s.orig_height,
        "orig_width": s.orig_width,
        "frame2": item["frame2"],
        "flow_file": item["flow"],
        "key": s.key,
        FLAGS_KEY: s.fitted.flags,
    }


def flow_spec(config: AutoflowPreprocessConfig, input_root: Path) -> ModalitySpec:
    h, w = config.height, config.width
    return ModalitySpec(
        name="autoflow",
        splits=SPLITS,
        columns=pa.schema(
            [
                ("frames", pa.fixed_shape_tensor(pa.uint8(), [2, h, w, 3])),
                ("flow", pa.fixed_shape_tensor(pa.float32(), [h, w, 2])),
                ("valid", pa.fixed_shape_tensor(pa.uint8(), [h, w])),
                ("orig_height", pa.int64()),
                ("orig_width", pa.int64()),
                ("frame2", pa.string()),
                ("flow_file", pa.string()),
            ]
        ),
        columns_doc={
            "frames": f"fixed_shape_tensor<uint8>[2, {h}, {w}, 3] (frame 1, frame 2; HWC RGB)",
            "flow": f"fixed_shape_tensor<float32>[{h}, {w}, 2] (u, v in output pixels; "
            "0 where not valid)",
            "valid": f"fixed_shape_tensor<uint8>[{h}, {w}] (1 = ground truth known)",
            "orig_height": "int64 (height of the input frames and flow)",
            "orig_width": "int64 (width of the input frames and flow)",
            "frame2": "string (path of frame 2 relative to the input root)",
            "flow_file": "string (path of the ground-truth flow relative to the input root)",
        },
        decode=partial(decode_flow_row, config=config, root=str(input_root)),
        label_source="the layout",
        row_flags=flags_in_row,
        key_doc="string (sha256 of the sha256 hex digests of frame 1, frame 2 and the flow "
        "file, one per line)",
    )


def preprocess_flow(
    input_dir: Path,
    output_dir: Path,
    config: AutoflowPreprocessConfig | None = None,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Run the optical-flow preprocessing job on the connected Ray cluster.

    ``config.layout == "auto"`` is resolved by detection first; the manifest's config records
    the layout used. Processes only samples the output's manifest does not list yet.
    """
    config = config or AutoflowPreprocessConfig()
    input_root = Path(input_dir).resolve()
    output_root = Path(output_dir).resolve()
    layout, scan = scan_flow(input_root, config.layout, config.sintel_pass, config.split)
    config = config.model_copy(update={"layout": layout})
    spec = flow_spec(config, input_root)
    return run_preprocessing(spec, scan, input_root, output_root, config, overwrite, progress)
