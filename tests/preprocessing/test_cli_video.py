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
