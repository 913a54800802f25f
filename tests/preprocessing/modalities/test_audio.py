"""The audio preprocessing job, end to end on the generated AudioSet sample, on Ray."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.config import AudioPreprocessConfig
from preprocessing.decode.audio import decode_audio
from preprocessing.modalities.audio import preprocess_audio
from preprocessing.parquet.shards import tensor_from_column
from preprocessing.sample_data.audio import write_audioset_sample

CONFIG = AudioPreprocessConfig(rows_per_shard=3)


@pytest.fixture(scope="module")
def audio_shards(tmp_path_factory, ray_cluster):
    root = tmp_path_factory.mktemp("audio")
    sample = write_audioset_sample(root / "raw", seed=5)
    manifest = preprocess_audio(root / "raw", root / "shards", CONFIG)
    return sample, root / "shards", manifest


def rows_of(shards, manifest):
    return [
        row
        for split in manifest.splits
        for p in manifest.shard_paths(split)
        for row in pq.read_table(shards / p).to_pylist()
    ]


def quarantine_of(shards, manifest):
    return {
        r["source"]: (r["stage"], r["reason"])
        for q in manifest.quarantine
        for r in pq.read_table(shards / q.path).to_pylist()
    }


def test_ray_data_reads_float32_windows_and_multi_hot_labels(audio_shards):
    import ray

    sample, shards, m = audio_shards
    ds = ray.data.read_parquet(str(shards / "train"))
    batch = ds.take_batch(100, batch_format="numpy")
    n = m.splits["train"].rows
    assert isinstance(batch["audio"], np.ndarray)
    assert batch["audio"].shape == (n, 61_440) and batch["audio"].dtype == np.float32
    assert batch["labels"].shape == (n, 5) and batch["labels"].dtype == np.uint8
    assert n == sum(1 for split, _, _ in sample.rows.values() if split == "train")


def test_rows_match_the_csv_and_a_direct_decode(audio_shards):
    sample, shards, m = audio_shards
    rows = rows_of(shards, m)
    assert {r["source"] for r in rows} == set(sample.rows)
    for split in m.splits:
        for p in m.shard_paths(split):
            table = pq.read_table(shards / p)
            audio = tensor_from_column(table["audio"])
            labels = tensor_from_column(table["labels"])
            for i, source in enumerate(table["source"].to_pylist()):
                want_split, ytid, mids = sample.rows[source]
                assert split == want_split and table["ytid"][i].as_py() == ytid
                want = sorted(sample.label_map[mid] for mid in mids)
                assert table["label_indices"][i].as_py() == want
                assert np.flatnonzero(labels[i]).tolist() == want
                data = (sample.root / source).read_bytes()
                np.testing.assert_array_equal(audio[i], decode_audio(data, source))
    assert all(s.rows <= 3 for e in m.splits.values() for s in e.shards)
    assert m.label_map == sample.label_map and m.modality == "audio"


def test_every_broken_missing_or_unlabelled_input_is_quarantined_with_its_reason(audio_shards):
    sample, shards, m = audio_shards
    q = quarantine_of(shards, m)
    assert set(q) == set(sample.broken)
    kinds = {kind: q[source] for source, kind in sample.broken.items()}
    assert kinds["empty"] == ("decode", "empty file (0 bytes)")
    # libsndfile and FFmpeg both fail on the cut FLAC ("lost sync"); had either returned the
    # partial clip, the STREAMINFO check would reject it as "truncated file".
    assert kinds["truncated"][0] == "decode"
    assert "lost sync" in kinds["truncated"][1] or "truncated file" in kinds["truncated"][1]
    assert kinds["missing_file"][0] == "scan"
    assert "no audio file for YTID" in kinds["missing_file"][1]
    assert kinds["unknown_mid"][0] == "scan" and "'/m/0zzzzzz'" in kinds["unknown_mid"][1]
    assert kinds["unlabelled"][0] == "scan" and kinds["unlabelled"][1].startswith("unlabelled")


def test_counts_reconcile(audio_shards):
    sample, shards, m = audio_shards
    assert m.inputs_seen == sample.total_inputs == m.rows_written + m.quarantined
    assert m.rows_written == len(sample.rows) and m.quarantined == len(sample.broken)
    on_disk = {p.relative_to(shards).as_posix() for p in shards.rglob("*.parquet")}
    assert on_disk == m.all_files()


def test_rerun_writes_nothing_and_a_changed_window_needs_overwrite(audio_shards):
    sample, shards, m = audio_shards
    before = {p: p.stat().st_mtime_ns for p in shards.rglob("*")}
    again = preprocess_audio(sample.root, shards, CONFIG)
    assert again.version == m.version == 1
    assert {p: p.stat().st_mtime_ns for p in shards.rglob("*")} == before
    with pytest.raises(ValueError, match=r"was written with config .* pass --overwrite"):
        preprocess_audio(sample.root, shards, AudioPreprocessConfig(window_samples=48_000))


def test_an_added_clip_is_processed_alone_into_version_2(audio_shards, tmp_path):
    sample, shards, m = audio_shards
    raw, out = tmp_path / "raw", tmp_path / "shards"
    shutil.copytree(sample.root, raw)
    shutil.copytree(shards, out)
    good = next(s for s, (split, _, _) in sample.rows.items() if split == "val")
    shutil.copy(raw / good, raw / "audio/eval/newclip0001.wav")
    with (raw / "eval_segments.csv").open("a") as f:
        f.write('newclip0001, 0.000, 10.000, "/m/04rlf,/m/0jbk"\n')
    v2 = preprocess_audio(raw, out, CONFIG)
    assert v2.version == 2 and v2.rows_written == m.rows_written + 1
    assert v2.inputs_seen == m.inputs_seen + 1 == v2.rows_written + v2.quarantined
    (new,) = [r for r in rows_of(out, v2) if r["ytid"] == "newclip0001"]
    assert new["label_indices"] == [2, 3] and "-v0002-" in v2.shard_paths("val")[-1]
