"""``perceiver-pipeline sample-data|preprocess --modality video|kinetics`` on the session's Ray."""

import json

import pytest

from pipelines.cli import main


@pytest.mark.parametrize("modality", ["video", "kinetics"])
def test_sample_data_then_preprocess(tmp_path, capsys, ray_cluster, modality):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    assert main(["sample-data", "--modality", modality, "--out", str(raw)]) == 0
    assert "broken on purpose" in capsys.readouterr().out
    argv = ["preprocess", "--modality", modality, "--input", str(raw), "--output", str(shards)]
    options = ["--num-frames", "4", "--frame-stride", "2", "--size", "16"]
    assert main([*argv, *options, "--rows-per-shard", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["inputs_seen"] == summary["rows_written"] + summary["quarantined"]
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["modality"] == modality
    assert (manifest["config"]["num_frames"], manifest["config"]["size"]) == (4, 16)
    assert "[4, 16, 16, 3]" in manifest["schema"]["frames"]
    if modality == "kinetics":
        assert summary["quarantined"] == 6 and set(summary["splits"]) == {"train", "validate"}
        assert "[15360]" in manifest["schema"]["audio"]  # 4 x 2 / 25 = 0.32 s at 48 kHz
        assert summary["row_flags"]["train"] == {"audio_missing": 1, "audio_silent": 1}
    else:
        assert summary["quarantined"] == 4 and set(summary["splits"]) == {"train", "val"}


def test_video_rejects_a_kinetics_only_option(tmp_path, capsys):
    argv = ["preprocess", "--modality", "video", "--input", str(tmp_path), "--output"]
    assert main([*argv, str(tmp_path / "o"), "--target-fps", "30"]) == 2
    assert "--target-fps (an option of kinetics)" in capsys.readouterr().err


def test_ucf101_sample_then_preprocess_with_its_second_split(tmp_path, capsys, ray_cluster):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    argv = ["sample-data", "--modality", "video", "--layout", "ucf101", "--out", str(raw)]
    assert main(argv) == 0
    assert "broken on purpose" in capsys.readouterr().out
    argv = ["preprocess", "--modality", "video", "--input", str(raw), "--output", str(shards)]
    assert main([*argv, "--num-frames", "4", "--size", "16", "--split-number", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["config"]["split_number"] == 2
    assert "ucfTrainTestlist/trainlist02.txt" in manifest["split_rule"]
    # split 2 tests group g02 (6 clips, one truncated); the other groups train
    assert summary["splits"] == {"train": 12, "val": 5}
    assert summary["quarantined"] == 4  # truncated, Thumbs.db, a stray clip, an unlisted one
    assert summary["inputs_seen"] == summary["rows_written"] + summary["quarantined"]


def test_val_fraction_out_of_range_is_refused_by_name(tmp_path, capsys):
    argv = ["preprocess", "--modality", "video", "--input", str(tmp_path), "--output"]
    assert main([*argv, str(tmp_path / "o"), "--val-fraction", "1.5"]) == 2
    assert "--val-fraction: Input should be less than 1" in capsys.readouterr().err
