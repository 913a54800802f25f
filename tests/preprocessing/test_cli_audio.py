"""``perceiver-pipeline sample-data|preprocess --modality audio`` on the session's Ray."""

import json

from pipelines.cli import main


def test_sample_data_then_preprocess_audio(tmp_path, capsys, ray_cluster):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    assert main(["sample-data", "--modality", "audio", "--out", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "broken on purpose" in out and "MP3" in out
    assert (raw / "class_labels_indices.csv").is_file()
    argv = ["preprocess", "--modality", "audio", "--input", str(raw), "--output", str(shards)]
    assert main([*argv, "--window-samples", "4800", "--rows-per-shard", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["inputs_seen"] == summary["rows_written"] + summary["quarantined"]
    assert summary["quarantined"] == 5 and set(summary["splits"]) == {"train", "val"}
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["config"]["window_samples"] == 4800
    assert "[4800]" in manifest["schema"]["audio"]
