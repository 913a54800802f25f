import pytest

from pipelines.cli import COMMANDS, build_parser, main

COMMANDS_LISTED = [
    "demo",
    "sample-data",
    "preprocess",
    "train",
    "evaluate",
    "register",
    "promote",
    "rollback",
    "run",
    "workflow",
    "submit",
    "jobs",
    "convert",
]


@pytest.mark.parametrize("command", COMMANDS_LISTED)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"perceiver-pipeline {command}" in out
    if command in ("train", "evaluate", "run"):
        assert "deepspeed.zero_stage" in out  # the overridable keys are listed
        assert "task: optical_flow" in out  # per task
    assert "--verbose" in out and "--log-dir" in out


def test_top_level_help_lists_commands_and_env(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "MLFLOW_TRACKING_URI" in out and "RAY_ADDRESS" in out
    for command in COMMANDS_LISTED:
        assert command in out


def test_the_command_table_is_the_parser():
    assert list(COMMANDS) == COMMANDS_LISTED


def test_bad_config_exits_2_and_names_the_key(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("task: image_classification\nmodel: {num_classes: 3}\noptimizer: {lrr: 0.1}\n")
    assert main(["train", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "optimizer.lrr: unknown key" in err


def test_demo_refuses_an_unknown_task(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--task", "segmentation"])
    assert "invalid choice: 'segmentation'" in capsys.readouterr().err


def test_train_without_config_or_resume_names_both(capsys):
    assert main(["train"]) == 2
    assert "train needs --config (or --resume RUN_NAME)" in capsys.readouterr().err


def test_resume_of_an_unknown_run_lists_the_runs_there(tmp_path, capsys):
    assert main(["train", "--resume", "nope", "--storage-path", str(tmp_path)]) == 2
    assert "no training run 'nope'" in capsys.readouterr().err


def test_sample_data_writes_the_layout(tmp_path, capsys):
    assert (
        main(
            [
                "sample-data",
                "--out",
                str(tmp_path / "d"),
                "--classes",
                "2",
                "--train-per-class",
                "4",
                "--val-per-class",
                "1",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["train", "val"]
    assert "broken on purpose" in capsys.readouterr().out


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def test_submit_and_jobs_without_an_address_name_both_ways_to_give_it(capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["jobs", "list"]) == 2
    assert "pass --address http://HEAD:8265 or set RAY_ADDRESS" in capsys.readouterr().err


def test_submit_refuses_a_command_that_cannot_run_as_a_job(capsys):
    assert main(["submit", "--address", "http://127.0.0.1:1", "--", "demo"]) == 2
    assert "'demo' cannot be submitted; submit one of: preprocess" in capsys.readouterr().err


def test_a_bad_workflow_file_exits_2_naming_the_key(tmp_path, capsys):
    p = tmp_path / "w.yaml"
    p.write_text("name: w\nconfig: image_classification_debug\nsteps: [{kind: trian}]\n")
    assert main(["workflow", "run", str(p)]) == 2
    assert "invalid workflow" in capsys.readouterr().err
