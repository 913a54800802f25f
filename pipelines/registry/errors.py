"""A registry that is down or refuses: one line that says which, and that nothing was lost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.errors import PipelineError

# How long a registry command waits for a server that does not answer, instead of MLflow's
# default of 7 retries with exponential backoff (minutes). Set only where unset.
QUICK_FAILURE_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class RegistryError(PipelineError):
    """The MLflow server could not be reached, or refused the request."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def diagnose(exc: BaseException, uri: str) -> str:
    """What went wrong with the registry at ``uri``, in words a user can act on."""
    text = str(exc)
    code = getattr(exc, "error_code", "")
    if code == "UNAUTHENTICATED" or "error code 401" in text:
        return (
            f"the MLflow server at {uri} requires credentials: set MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD"
        )
    if code == "PERMISSION_DENIED" or "error code 403" in text:
        return f"the MLflow server at {uri} refused the request (permission denied for this user)"
    if any(
        s in text
        for s in ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out")
    ):
        return f"the MLflow server at {uri} is unreachable ({_first_line(exc)})"
    return f"the MLflow registry at {uri} failed: {_first_line(exc)}"


@contextmanager
def registry_errors(uri: str, what: str, rerun: str | None = None) -> Iterator[None]:
    """Re-raise MLflow and connection failures during ``what`` as a ``RegistryError``."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, requests.exceptions.RequestException, ConnectionError) as exc:
        hint = f"; rerun: {rerun}" if rerun else ""
        raise RegistryError(
            f"{what} did not complete: {diagnose(exc, uri)}. Nothing recorded so far is lost "
            f"(training runs, checkpoints and logged models stay){hint}"
        ) from exc
