"""The video preprocessing job, end to end on generated clips and the real MP4/AVI, on Ray."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.config import VideoPreprocessConfig
from preprocessing.decode.video import decode_video
from preprocessing.modalities.video import preprocess_video
from preprocessing.parquet.shards import tensor_from_column
from preprocessing.sample_data.video import write_video_sample

CONFIG = VideoPreprocessConfig(num_frames=8, frame_stride=2, size=32, rows_per_shard=4)
REAL = {"mmaction2_demo.mp4": "bowling", "mmaction2_test.avi": "surfing water"}


@pytest.fixture(scope="module")
def video_shards(tmp_path_factory, ray_cluster, shared_samples):
    root = tmp_path_factory.mktemp("video")
    sample = write_video_sample(root / "raw")
    for name, label in REAL.items():
        shutil.copy(shared_samples / "video" / name, root / "raw" / "train" / label / name)
        sample.rows[f"train/{label}/{name}"] = ("train", label)
    manifest = preprocess_video(root / "raw", root / "shards", CONFIG)
    return sample, root / "shards", manifest


def quarantine_of(shards, manifest):
    return {
        r["source"]: (r["stage"], r["reason"])
        for q in manifest.quarantine
        for r in pq.read_table(shards / q.path).to_pylist()
    }


def test_ray_data_reads_uint8_clips(video_shards):
    import ray

    sample, shards, m = video_shards
    batch = ray.data.read_parquet(str(shards / "train")).take_batch(100, batch_format="numpy")
    n = m.splits["train"].rows
    assert n == sum(1 for split, _ in sample.rows.values() if split == "train") == 8
    assert isinstance(batch["frames"], np.ndarray)
    assert batch["frames"].shape == (n, 8, 32, 32, 3) and batch["frames"].dtype == np.uint8
    assert batch["label"].dtype == np.int64 and batch["fps"].dtype == np.float64


def test_rows_equal_a_direct_decode_and_carry_their_labels(video_shards):
    sample, shards, m = video_shards
    seen = {}
    for split in m.splits:
        for p in m.shard_paths(split):
            table = pq.read_table(shards / p)
            frames = tensor_from_column(table["frames"])
            for i, row in enumerate(table.drop(["frames"]).to_pylist()):
                want_split, label = sample.rows[row["source"]]
                assert (split, row["label_name"]) == (want_split, label)
                assert row["label"] == sample.label_map[label]
                v = decode_video((sample.root / row["source"]).read_bytes(), 8, 2, 32)
                np.testing.assert_array_equal(frames[i], v.frames)
                assert row["frame_times"] == v.frame_times
                seen[row["source"]] = row
    assert set(seen) == set(sample.rows)
    real_mp4 = seen["train/bowling/mmaction2_demo.mp4"]
    real_avi = seen["train/surfing water/mmaction2_test.avi"]
    assert (real_mp4["num_decoded_frames"], real_mp4["fps"]) == (280, 28.0)
    assert (real_avi["num_decoded_frames"], real_avi["fps"]) == (164, 25.0)
    assert m.label_map == sample.label_map and m.modality == "video"


def test_broken_files_are_quarantined_with_reasons_and_counts_reconcile(video_shards):
    sample, shards, m = video_shards
    q = quarantine_of(shards, m)
    assert set(q) == set(sample.broken)
    kinds = {kind: q[source] for source, kind in sample.broken.items()}
    assert kinds["empty"] == ("decode", "empty file (0 bytes)")
    assert kinds["text"][0] == "decode"
    assert kinds["text"][1].startswith("not a decodable video: InvalidDataError")
    assert kinds["truncated"][0] == "decode"
    assert kinds["truncated"][1] == "truncated file: the header declares 40 video frames, 20 read"
    assert kinds["unsupported_extension"][0] == "scan"
    assert m.inputs_seen == sample.total_inputs == m.rows_written + m.quarantined
    assert (m.rows_written, m.quarantined) == (len(sample.rows), 4)
    on_disk = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")}
    assert on_disk == m.all_files()
    # the two 0.8 s clips at 15 fps are shorter than 8 frames x 2 / 15 fps: last frame repeated
    assert m.row_flags == {"train": {"short_clip": 1}, "val": {"short_clip": 1}}


def test_rerun_writes_nothing_and_another_frame_count_needs_overwrite(video_shards):
    sample, shards, m = video_shards
    before = {p: p.stat().st_mtime_ns for p in shards.rglob("*")}
    assert preprocess_video(sample.root, shards, CONFIG).version == m.version == 1
    assert {p: p.stat().st_mtime_ns for p in shards.rglob("*")} == before
    with pytest.raises(ValueError, match="pass --overwrite"):
        preprocess_video(sample.root, shards, VideoPreprocessConfig(num_frames=4, size=32))
