"""``perceiver-pipeline sample-data|preprocess --modality autoflow`` on the session's Ray."""

import json

from pipelines.cli import main


def test_sample_data_then_preprocess_kitti(tmp_path, capsys, ray_cluster):
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    argv = ["sample-data", "--modality", "autoflow", "--layout", "kitti", "--out", str(raw)]
    assert main(argv) == 0
    assert "broken on purpose" in capsys.readouterr().out
    argv = ["preprocess", "--modality", "autoflow", "--input", str(raw), "--output", str(shards)]
    assert main([*argv, "--height", "24", "--width", "40", "--rows-per-shard", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_written"], summary["quarantined"], summary["inputs_seen"]) == (3, 5, 8)
    assert summary["splits"] == {"val": 3}
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["modality"] == "autoflow" and manifest["config"]["layout"] == "kitti"
    assert "[2, 24, 40, 3]" in manifest["schema"]["frames"]
    assert "[24, 40, 2]" in manifest["schema"]["flow"]


def test_sample_data_writes_all_four_layouts(tmp_path, capsys):
    assert main(["sample-data", "--modality", "autoflow", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "autoflow",
        "chairs",
        "kitti",
        "sintel",
    ]
    assert capsys.readouterr().out.count("broken on purpose") == 4


def test_flow_options_are_refused_for_other_modalities_and_vice_versa(tmp_path, capsys):
    argv = ["preprocess", "--input", str(tmp_path), "--output", str(tmp_path / "o")]
    assert main([*argv, "--modality", "image", "--height", "10"]) == 2
    assert "--height (an option of autoflow)" in capsys.readouterr().err
    assert main([*argv, "--modality", "autoflow", "--num-frames", "4"]) == 2
    assert "not an option of --modality autoflow: --num-frames" in capsys.readouterr().err
    assert main([*argv, "--modality", "autoflow"]) == 2
    assert "matches no optical-flow layout" in capsys.readouterr().err
