"""The video job on plain class folders (UCF-101's layout), end to end on Ray: the official
split lists, the hashed val fraction across incremental runs, quarantine, the split rule."""

import hashlib
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.config import VideoPreprocessConfig
from preprocessing.decode.video import decode_video
from preprocessing.modalities.video import preprocess_video
from preprocessing.parquet.shards import tensor_from_column
from preprocessing.sample_data.video import UCF_LIST_DIR, encode_clip, write_ucf_sample

CONFIG = VideoPreprocessConfig(num_frames=4, frame_stride=2, size=16, rows_per_shard=8)


def rows_by_source(shards, manifest):
    """source -> (split, row without frames), and source -> frames, from the listed shards."""
    rows, frames = {}, {}
    for split in manifest.splits:
        for path in manifest.shard_paths(split):
            table = pq.read_table(shards / path)
            for i, row in enumerate(table.drop(["frames"]).to_pylist()):
                rows[row["source"]] = (split, row)
                frames[row["source"]] = tensor_from_column(table["frames"])[i]
    return rows, frames


def quarantine_of(shards, manifest):
    return {
        r["source"]: (r["stage"], r["reason"])
        for q in manifest.quarantine
        for r in pq.read_table(shards / q.path).to_pylist()
    }


def hashed(source, val_fraction):
    h = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big")
    return "val" if h < val_fraction * 2**64 else "train"


def test_ucf101_split_lists_are_followed_and_recorded(tmp_path, ray_cluster):
    ds = write_ucf_sample(tmp_path / "raw", split_lists=True)
    m = preprocess_video(ds.root, tmp_path / "shards", CONFIG)
    rows, frames = rows_by_source(tmp_path / "shards", m)
    assert {src: (split, row["label_name"]) for src, (split, row) in rows.items()} == ds.rows
    assert all(row["label"] == ds.label_map[row["label_name"]] for _, row in rows.values())
    some = sorted(rows)[0]
    np.testing.assert_array_equal(
        frames[some], decode_video((ds.root / some).read_bytes(), 4, 2, 16).frames
    )
    q = quarantine_of(tmp_path / "shards", m)
    assert set(q) == set(ds.broken)
    kinds = {kind: q[src] for src, kind in ds.broken.items()}
    assert kinds["truncated"][0] == "decode"
    assert kinds["missing_clip"] == (
        "scan",
        "listed clip 'Archery/v_Archery_g04_c01.avi' not found",
    )
    stage, reason = kinds["unlisted"]
    assert stage == "scan" and reason.startswith("in none of the UCF-101 split lists")
    assert m.inputs_seen == ds.total_inputs == m.rows_written + m.quarantined
    assert m.label_map == ds.label_map and set(m.splits) == {"train", "val"}
    assert m.split_rule is not None and m.split_rule.startswith(
        f"UCF-101 split lists {UCF_LIST_DIR}/trainlist01.txt"
    )


def test_val_fraction_is_deterministic_and_stable_across_incremental_runs(tmp_path, ray_cluster):
    ds = write_ucf_sample(tmp_path / "raw", split_lists=False)
    shards = tmp_path / "shards"
    config = CONFIG.model_copy(update={"val_fraction": 0.4})
    m1 = preprocess_video(ds.root, shards, config)
    rows1, _ = rows_by_source(shards, m1)
    assert {src: split for src, (split, _) in rows1.items()} == {
        src: hashed(src, 0.4) for src in ds.rows
    }
    assert set(m1.splits) == {"train", "val"}
    assert set(quarantine_of(shards, m1)) == set(ds.broken)
    assert m1.split_rule is not None and m1.split_rule.startswith("val_fraction 0.4: ")

    added = [f"Bowling/v_Bowling_g07_c{k:02d}.avi" for k in range(1, 4)]
    for source in added:
        (ds.root / source).write_bytes(encode_clip("avi", "mpeg4", (64, 48), 25, 12, 2, 3))
    m2 = preprocess_video(ds.root, shards, config)
    rows2, _ = rows_by_source(shards, m2)
    assert m2.version == 2 and m2.rows_written == m1.rows_written + 3
    assert {src: rows2[src][0] for src in rows1} == {src: s for src, (s, _) in rows1.items()}
    assert {src: rows2[src][0] for src in added} == {src: hashed(src, 0.4) for src in added}
    assert m2.inputs_seen == m2.rows_written + m2.quarantined == ds.total_inputs + 3
    assert preprocess_video(ds.root, shards, config).version == 2  # nothing new

    # a rule that would move rows between splits needs --overwrite
    with pytest.raises(ValueError, match="pass --overwrite"):
        preprocess_video(ds.root, shards, CONFIG)  # val_fraction 0.2: another config
    ucf = write_ucf_sample(tmp_path / "ucf", split_lists=True)  # the same clip names
    shutil.copytree(ucf.root / UCF_LIST_DIR, ds.root / UCF_LIST_DIR)
    with pytest.raises(ValueError, match=r"split rule changed .*pass --overwrite"):
        preprocess_video(ds.root, shards, config)
