"""The Kinetics layout scan and job: frames + the same span of audio, on generated clips and
the real MP4 (no audio stream) and AVI (MP3 audio), on Ray."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from preprocessing.config import KineticsPreprocessConfig
from preprocessing.decode.video import decode_audio_visual
from preprocessing.layouts.kinetics import parse_rows, scan_kinetics
from preprocessing.modalities.kinetics import preprocess_kinetics
from preprocessing.parquet.shards import tensor_from_column
from preprocessing.sample_data.video import KINETICS_CSV_DIR, write_kinetics_sample

CONFIG = KineticsPreprocessConfig(size=32, rows_per_shard=4)  # 16 frames at 25 fps, 48 kHz
REAL = {  # real sample -> (split, label, youtube id, start)
    "mmaction2_demo.mp4": ("train", "abseiling", "realMP4demo", 5),
    "mmaction2_test.avi": ("validate", "zumba", "realAVItest", 7),
}


def add_real_clips(sample, shared_samples):
    for name, (split, label, ytid, start) in REAL.items():
        ext = name.rsplit(".", 1)[1]
        source = f"{split}/{label}/{ytid}_{start:06d}_{start + 10:06d}.{ext}"
        shutil.copy(shared_samples / "video" / name, sample.root / source)
        with (sample.root / KINETICS_CSV_DIR / f"{split}.csv").open("a") as f:
            f.write(f"{label},{ytid},{start},{start + 10},{split}\n")
        sample.rows[source] = (split, label)
        sample.audio[source] = "ok" if ext == "avi" else "missing"


@pytest.fixture(scope="module")
def kinetics_shards(tmp_path_factory, ray_cluster, shared_samples):
    root = tmp_path_factory.mktemp("kinetics")
    sample = write_kinetics_sample(root / "raw")
    add_real_clips(sample, shared_samples)
    manifest = preprocess_kinetics(root / "raw", root / "shards", CONFIG)
    return sample, root / "shards", manifest


def rows_of(shards, manifest):
    out = {}
    for split in manifest.splits:
        for p in manifest.shard_paths(split):
            table = pq.read_table(shards / p)
            frames = tensor_from_column(table["frames"])
            audio = tensor_from_column(table["audio"])
            for i, row in enumerate(table.drop(["frames", "audio"]).to_pylist()):
                out[row["source"]] = {**row, "split": split, "frames": frames[i], "audio": audio[i]}
    return out


def test_scan_matches_rows_to_clips_and_rejects_the_rest(tmp_path):
    sample = write_kinetics_sample(tmp_path)
    scan = scan_kinetics(tmp_path)
    assert scan.label_map == {"abseiling": 0, "air drumming": 1, "zumba": 2}
    at_decode = {s for s, k in sample.broken.items() if k in ("truncated", "empty", "text")}
    assert {i.source for i in scan.items} == set(sample.rows) | at_decode
    reasons = {r.source: r.reason for r in scan.rejected}
    assert set(reasons) == set(sample.broken) - at_decode
    kinds = {k: reasons.get(s, "") for s, k in sample.broken.items()}
    assert kinds["missing_clip"].startswith("no clip for youtube_id")
    assert "train/zumba/" in kinds["missing_clip"]
    assert kinds["unknown_label"].startswith("unknown label 'yodelling'")
    assert kinds["not_in_csv"].startswith("not in any CSV")
    drumming = next(i for i in scan.items if i.label_name == "air drumming")
    assert drumming.source.startswith("train/air_drumming/") and drumming.label == 1


def test_scan_reports_bad_duplicate_and_misplaced_rows(tmp_path):
    sample = write_kinetics_sample(tmp_path)
    train_csv = tmp_path / KINETICS_CSV_DIR / "train.csv"
    lines = train_csv.read_text().splitlines()
    lines += [
        lines[1],
        "abseiling,abc,ten,20,train",
        "abseiling,abc,0,10,holdout",
        ",abc,0,10,train",
    ]
    train_csv.write_text("\n".join(lines) + "\n")
    moved = next(s for s in sample.rows if s.startswith("validate/abseiling/"))
    shutil.move(tmp_path / moved, tmp_path / moved.replace("abseiling", "zumba"))
    (tmp_path / "README.csv").write_text("a,b\n1,2\n")  # not a Kinetics CSV: not read
    reasons = {r.source: r.reason for r in scan_kinetics(tmp_path).rejected}
    n = len(lines)
    assert reasons[f"{KINETICS_CSV_DIR}/train.csv:{n - 3}"].startswith("duplicate row for clip")
    assert reasons[f"{KINETICS_CSV_DIR}/train.csv:{n - 2}"].startswith("malformed row: bad time")
    assert "unknown split 'holdout'" in reasons[f"{KINETICS_CSV_DIR}/train.csv:{n - 1}"]
    assert reasons[f"{KINETICS_CSV_DIR}/train.csv:{n}"] == "unlabelled row: empty label"
    misplaced = reasons[moved.replace("abseiling", "zumba")]
    assert misplaced.startswith("not in any CSV") and f"expects '{moved}'" in misplaced


def test_parse_rows_reads_the_release_format():
    text = "label,youtube_id,time_start,time_end,split\nair drumming,--nQbRBEz2s,104,114,train\n"
    rows, bad = parse_rows(text, "train.csv")
    assert not bad and rows[0].stem == "--nQbRBEz2s_000104_000114"
    assert rows[0].candidates()[:2] == [
        "train/air drumming/--nQbRBEz2s_000104_000114.mp4",
        "train/air drumming/--nQbRBEz2s_000104_000114.mkv",
    ]
    assert "train/air_drumming/--nQbRBEz2s_000104_000114.mp4" in rows[0].candidates()


def test_ray_data_reads_frames_and_48k_audio(kinetics_shards):
    import ray

    sample, shards, m = kinetics_shards
    batch = ray.data.read_parquet(str(shards / "train")).take_batch(100, batch_format="numpy")
    n = m.splits["train"].rows
    assert n == sum(1 for split, _ in sample.rows.values() if split == "train") == 6
    assert batch["frames"].shape == (n, 16, 32, 32, 3) and batch["frames"].dtype == np.uint8
    assert batch["audio"].shape == (n, 30_720) and batch["audio"].dtype == np.float32
    assert batch["audio_present"].dtype == np.bool_


def test_rows_equal_a_direct_decode_and_report_absent_audio(kinetics_shards):
    sample, shards, m = kinetics_shards
    rows = rows_of(shards, m)
    assert set(rows) == set(sample.rows)
    for source, row in rows.items():
        split, label = sample.rows[source]
        assert (row["split"], row["label_name"], row["label"]) == (
            split,
            label,
            m.label_map[label],
        )
        v = decode_audio_visual((sample.root / source).read_bytes(), size=32)
        np.testing.assert_array_equal(row["frames"], v.frames)
        np.testing.assert_array_equal(row["audio"], v.audio)
        assert row["audio_present"] == (sample.audio[source] == "ok")
        if not row["audio_present"]:
            assert not row["audio"].any()
        else:
            assert np.abs(row["audio"]).max() > 0.05
    real = rows["train/abseiling/realMP4demo_000005_000015.mp4"]
    assert real["audio_present"] is False and real["fps"] == 28.0
    assert (real["youtube_id"], real["time_start"], real["time_end"]) == ("realMP4demo", 5, 15)
    assert rows["validate/zumba/realAVItest_000007_000017.avi"]["audio_present"] is True


def test_quarantine_counts_and_audio_flags_reconcile(kinetics_shards):
    sample, shards, m = kinetics_shards
    q = {
        r["source"]: (r["stage"], r["reason"])
        for e in m.quarantine
        for r in pq.read_table(shards / e.path).to_pylist()
    }
    assert set(q) == set(sample.broken)
    kinds = {kind: q[source] for source, kind in sample.broken.items()}
    assert kinds["empty"] == ("decode", "empty file (0 bytes)")
    assert kinds["truncated"][0] == kinds["text"][0] == "decode"
    assert kinds["truncated"][1].startswith("not a decodable video")  # cut before its moov
    assert {kinds[k][0] for k in ("missing_clip", "unknown_label", "not_in_csv")} == {"scan"}
    assert m.inputs_seen == sample.total_inputs == m.rows_written + m.quarantined
    assert m.quarantined == len(sample.broken) == 6
    assert m.row_flags == {
        "train": {"audio_missing": 2, "audio_silent": 1},
        "validate": {"audio_missing": 1},
    }
    assert m.config["num_frames"] == 16 and "[30720]" in m.schema_["audio"]


def test_rerun_writes_nothing(kinetics_shards):
    sample, shards, m = kinetics_shards
    before = {p: p.stat().st_mtime_ns for p in shards.rglob("*")}
    assert preprocess_kinetics(sample.root, shards, CONFIG).version == m.version == 1
    assert {p: p.stat().st_mtime_ns for p in shards.rglob("*")} == before


def test_config_needs_a_whole_number_of_audio_samples():
    assert KineticsPreprocessConfig(num_frames=32).audio_samples == 61_440
    with pytest.raises(ValueError, match="not a whole number of samples"):
        KineticsPreprocessConfig(num_frames=16, target_fps=7)


def test_an_added_clip_goes_into_version_2_and_flags_accumulate(kinetics_shards, tmp_path):
    sample, shards, m = kinetics_shards
    raw, out = tmp_path / "raw", tmp_path / "shards"
    shutil.copytree(sample.root, raw)
    shutil.copytree(shards, out)
    no_audio = next(s for s, a in sample.audio.items() if a == "missing" and "real" not in s)
    shutil.copy(raw / no_audio, raw / "validate/zumba/newclip0001_000000_000010.mp4")
    with (raw / KINETICS_CSV_DIR / "validate.csv").open("a") as f:
        f.write("zumba,newclip0001,0,10,validate\n")
    v2 = preprocess_kinetics(raw, out, CONFIG)
    assert v2.version == 2 and v2.rows_written == m.rows_written + 1
    assert v2.inputs_seen == m.inputs_seen + 1 == v2.rows_written + v2.quarantined
    assert v2.row_flags["validate"] == {"audio_missing": 2}
    assert v2.row_flags["train"] == m.row_flags["train"]


def test_a_manifest_written_before_row_flags_still_reads(kinetics_shards):
    from preprocessing.engine.manifest import Manifest

    _, _, m = kinetics_shards
    old = m.model_dump(by_alias=True)
    del old["row_flags"]
    assert Manifest.model_validate(old).row_flags == {}
    old["row_flags"] = {"train": {"audio_missing": 99}}
    with pytest.raises(ValueError, match="row_flags"):
        Manifest.model_validate(old)
