"""``submit`` and ``jobs`` against the session's real Ray head (``ray start --head``, token
auth on): logs, exit codes, a duplicate submission id, stop, and the refusals."""

from __future__ import annotations

import time

import pytest

from pipelines.jobs.auth import find_token
from pipelines.jobs.client import JobsClient
from pipelines.jobs.runtime import EXCLUDES, entrypoint, runtime_env
from tests.pipelines.helpers import run_cli

NO_TOKEN = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")


def test_submit_streams_the_log_and_exits_0_on_success(ray_head):
    proc = run_cli("submit", "--address", ray_head.job_api, "--", "register", "--help")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The job's own output, streamed: the register command's help, run on the cluster.
    assert "usage: perceiver-pipeline register" in proc.stdout
    assert "submitted raysubmit_" in proc.stdout
    assert proc.stdout.rstrip().endswith("SUCCEEDED")
    assert ray_head.token not in proc.stdout + proc.stderr


def test_a_failed_job_exits_1_and_names_its_status(ray_head, mlflow_server):
    proc = run_cli(
        "submit",
        "--address",
        ray_head.job_api,
        "--",
        "register",
        "--run-id",
        "no-such-run",
        "--tracking-uri",
        mlflow_server,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The command's own error inside the job's log, then the job's outcome.
    assert "register run no-such-run did not complete" in proc.stdout
    assert "FAILED" in proc.stdout.splitlines()[-1]


def test_a_duplicate_submission_id_attaches_instead_of_starting_a_second_job(ray_head):
    sid = f"dup-{time.time_ns()}"
    args = ("submit", "--address", ray_head.job_api, "--submission-id", sid)
    first = run_cli(*args, "--no-wait", "--", "register", "--help")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"submitted {sid}" in first.stdout
    second = run_cli(*args, "--", "register", "--help")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"a job with submission id {sid} already exists" in second.stdout
    assert "no new job started" in second.stdout
    assert "usage: perceiver-pipeline register" in second.stdout  # the first job's log
    listed = run_cli("jobs", "list", "--address", ray_head.job_api)
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if line.startswith(sid)] != []
    assert sum(line.startswith(sid + " ") for line in listed.stdout.splitlines()) == 1


def test_a_stopped_job_exits_3_for_status_and_for_a_submit_that_attaches(ray_head):
    client = JobsClient(ray_head.job_api)
    sid = f"stop-{time.time_ns()}"
    client.client.submit_job(entrypoint="sleep 120", submission_id=sid)
    while client.status(sid) == "PENDING":
        time.sleep(0.5)
    stopped = run_cli("jobs", "stop", sid, "--address", ray_head.job_api)
    assert stopped.returncode == 0 and f"stop requested for {sid}" in stopped.stdout
    assert client.wait(sid) == "STOPPED"
    status = run_cli("jobs", "status", sid, "--address", ray_head.job_api)
    assert status.returncode == 3 and "STOPPED" in status.stdout
    attached = run_cli(
        "submit", "--address", ray_head.job_api, "--submission-id", sid, "--", "register", "--help"
    )
    assert attached.returncode == 3, attached.stdout + attached.stderr
    assert "already exists" in attached.stdout and "STOPPED" in attached.stdout


@pytest.mark.parametrize("command", [("jobs", "list"), ("submit", "--", "register", "--help")])
def test_no_token_is_refused_with_the_fix_named(ray_head, tmp_path, command):
    proc = run_cli(
        *command[:1],
        "--address",
        ray_head.job_api,
        *command[1:],
        env={"HOME": str(tmp_path)},  # no ~/.ray/auth_token either
        drop=NO_TOKEN,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "requires a token and none was sent" in proc.stderr
    assert "set RAY_AUTH_TOKEN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # one line, no traceback


@pytest.mark.parametrize("command", [("jobs", "list"), ("submit", "--", "register", "--help")])
def test_a_wrong_token_is_refused_and_never_printed(ray_head, tmp_path, command):
    wrong = "0" * 64
    proc = run_cli(
        *command[:1],
        "--address",
        ray_head.job_api,
        *command[1:],
        env={"HOME": str(tmp_path), "RAY_AUTH_TOKEN": wrong},
        drop=("RAY_AUTH_MODE",),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused the token from RAY_AUTH_TOKEN (a wrong token)" in proc.stderr
    assert wrong not in proc.stdout + proc.stderr


def test_the_right_token_is_sent_whatever_the_clients_auth_mode(ray_head, tmp_path):
    """From RAY_AUTH_TOKEN_PATH, with the client's RAY_AUTH_MODE unset (Ray's own client
    would then send nothing)."""
    token_file = tmp_path / "token"
    token_file.write_text(ray_head.token + "\n")
    proc = run_cli(
        "jobs",
        "list",
        "--address",
        ray_head.job_api,
        env={"HOME": str(tmp_path), "RAY_AUTH_TOKEN_PATH": str(token_file)},
        drop=("RAY_AUTH_TOKEN", "RAY_AUTH_MODE"),
    )
    assert proc.returncode == 0, proc.stderr
    assert ray_head.token not in proc.stdout + proc.stderr


def test_token_lookup_order_and_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in NO_TOKEN:
        monkeypatch.delenv(name, raising=False)
    assert find_token().value is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    assert find_token().value == "from-home"
    path = tmp_path / "t"
    path.write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert find_token().value == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    token = find_token()
    assert token.value == "from-env" and "from-env" not in repr(token)
    assert token.headers() == {"Authorization": "Bearer from-env"}


def test_the_job_carries_the_code_and_mlflow_settings_but_no_data(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "p")
    env = runtime_env()
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["env_vars"]["MLFLOW_TRACKING_PASSWORD"] == "p"
    assert (env["working_dir"] and env["excludes"] == EXCLUDES) and ".venv" in EXCLUDES
    assert {"demo-output", "mlruns", "mlflow.db", "*.parquet"} <= set(EXCLUDES)
    line = entrypoint(["train", "--config", "a b.yaml"])
    assert line == "python -m pipelines.cli train --verbose --config 'a b.yaml'"
    with pytest.raises(ValueError, match="'demo' cannot be submitted"):
        entrypoint(["demo"])
    with pytest.raises(ValueError, match="give the command to submit after --"):
        entrypoint([])


def test_an_address_that_is_not_the_job_api_is_refused_by_name(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="pass --address http://HEAD:8265 or set RAY_ADDRESS"):
        JobsClient(None)
    with pytest.raises(ValueError, match=r"'127\.0\.0\.1:6379' is not the job API's"):
        JobsClient("127.0.0.1:6379")
