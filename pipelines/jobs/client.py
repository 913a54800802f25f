"""Submitting, following, listing and stopping jobs on a Ray cluster's job API.

A thin layer over ``ray.job_submission.JobSubmissionClient`` that adds what the CLI needs:
the token sent as a header whatever ``RAY_AUTH_MODE`` says, Ray's 401/403 turned into one
line naming the fix (``pipelines.jobs.auth``), idempotent submission by id (an id that exists
is attached to, never started twice), and an exit code from the job's outcome.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TextIO

from pipelines.errors import PipelineError
from pipelines.jobs.auth import RayAuthError, Token, find_token, refusal

ADDRESS_ENV = "RAY_ADDRESS"
# Exit codes of ``submit`` and ``jobs status``: the job's outcome.
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}
TERMINAL = frozenset(EXIT_CODES)


class JobError(PipelineError):
    """The job API could not be reached, or refused the request for a reason other than auth."""


def resolve_address(address: str | None) -> str:
    """``--address``, else ``RAY_ADDRESS``; the job API wants the dashboard's http URL."""
    value = address or os.environ.get(ADDRESS_ENV, "")
    if not value:
        raise ValueError(
            "no Ray cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS"
        )
    if value.startswith("ray://") or "://" not in value:
        raise ValueError(
            f"address {value!r} is not the job API's: give the dashboard URL, "
            "e.g. http://HEAD:8265 (RAY_ADDRESS or --address)"
        )
    return value.rstrip("/")


@contextmanager
def _api_server_address(address: str) -> Iterator[None]:
    """Ray's client lets ``RAY_ADDRESS`` override the address it is given (on a machine of
    the cluster that is the GCS, not the job API); ``RAY_API_SERVER_ADDRESS`` overrides
    that, so it names ours while the client is made."""
    name = "RAY_API_SERVER_ADDRESS"
    before = os.environ.get(name)
    os.environ[name] = address
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


_STATUS = re.compile(r"status code (\d{3})\b")


def http_status(message: str) -> int | None:
    """The HTTP status in Ray's "Request failed with status code N: ..." errors, or None.
    Only that phrase counts: a job id or a port may hold "401" too."""
    found = _STATUS.search(message)
    return int(found.group(1)) if found else None


@dataclass
class Submission:
    submission_id: str
    attached: bool  # True if the id existed and no new job was started


class JobsClient:
    """One connection to a cluster's job API, authenticated with the found token."""

    def __init__(self, address: str | None = None, token: Token | None = None):
        self.address = resolve_address(address)
        self.token = token or find_token()
        with self._errors(), _api_server_address(self.address):
            from ray.job_submission import JobSubmissionClient

            self.client = JobSubmissionClient(self.address, headers=self.token.headers())

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn Ray's auth errors into ``RayAuthError`` and connection failures into
        ``JobError``, both one line; never include the token."""
        from ray.exceptions import AuthenticationError

        try:
            yield
        except AuthenticationError as exc:
            err = refusal(str(exc), self.address, self.token)
            raise (err or RayAuthError(str(exc).splitlines()[0])) from None
        except ConnectionError as exc:
            raise JobError(f"cannot reach the Ray job API at {self.address}: {exc}") from None
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            status = http_status(first)
            if status in (401, 403):
                err = refusal(
                    "Authentication required" if status == 401 else "Authentication failed",
                    self.address,
                    self.token,
                )
                raise err from None  # type: ignore[misc]
            raise JobError(f"Ray job API at {self.address}: {first}") from None

    def exists(self, submission_id: str) -> bool:
        try:
            with self._errors():
                self.client.get_job_info(submission_id)
        except JobError as exc:
            if "does not exist" in str(exc) or "status code 404" in str(exc):
                return False
            raise
        return True

    def submit(
        self,
        entrypoint: str,
        runtime_env: dict[str, Any],
        submission_id: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Submission:
        """Start the job, or attach to ``submission_id`` if a job with that id exists."""
        if submission_id and self.exists(submission_id):
            return Submission(submission_id, attached=True)
        try:
            with self._errors():
                job_id = self.client.submit_job(
                    entrypoint=entrypoint,
                    runtime_env=runtime_env,
                    submission_id=submission_id,
                    entrypoint_num_cpus=num_cpus,
                    entrypoint_num_gpus=num_gpus,
                    metadata=metadata,
                )
        except JobError as exc:  # lost a race with another submit of the same id
            if submission_id and "already exists" in str(exc):
                return Submission(submission_id, attached=True)
            raise
        return Submission(job_id, attached=False)

    def status(self, submission_id: str) -> str:
        with self._errors():
            return str(self.client.get_job_status(submission_id).value)

    def info(self, submission_id: str) -> Any:
        with self._errors():
            return self.client.get_job_info(submission_id)

    def list(self) -> list[Any]:
        with self._errors():
            return sorted(self.client.list_jobs(), key=lambda j: j.start_time or 0)

    def logs(self, submission_id: str) -> str:
        with self._errors():
            return str(self.client.get_job_logs(submission_id))

    def stop(self, submission_id: str) -> bool:
        with self._errors():
            return bool(self.client.stop_job(submission_id))

    def follow(self, submission_id: str, write: Callable[[str], Any] | None = None) -> str:
        """Stream the job's log until it ends; return its final status."""
        import aiohttp

        write = write or _stdout_writer(sys.stdout)

        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(submission_id):
                write(chunk)

        # A stream that closes early is fine: polling the status below says how the job ended.
        with self._errors(), suppress(RuntimeError, OSError, aiohttp.ClientError):
            asyncio.run(tail())
        return self.wait(submission_id)

    def wait(self, submission_id: str, poll_seconds: float = 1.0) -> str:
        import time

        while (status := self.status(submission_id)) not in TERMINAL:
            time.sleep(poll_seconds)
        return status


def _stdout_writer(stream: TextIO) -> Callable[[str], Any]:
    def write(chunk: str) -> None:
        stream.write(chunk)
        stream.flush()

    return write


def exit_code(status: str) -> int:
    """0 for SUCCEEDED, 1 for FAILED, 3 for STOPPED; 4 for a job that has not ended."""
    return EXIT_CODES.get(status, 4)
