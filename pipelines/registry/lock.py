"""One promotion or rollback at a time per registered model, through the registry itself.

MLflow has no compare-and-set on aliases, but creating a registered model is atomic: the
store's unique name constraint lets exactly one of two concurrent creates succeed. The lock
is the registered model ``<name>.promotion-lock``; its holder (host, pid, time, what)
is in its description, and the holder deletes it when done. Whoever holds it reads the
champion, scores against it and moves the alias, so a champion is never replaced by a
version that was not scored against it. A holder that died leaves the lock behind: the
error names it, and ``--break-lock`` removes it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pipelines.errors import PipelineError

LOCK_SUFFIX = ".promotion-lock"


class LockTimeout(PipelineError):
    """Another promotion or rollback held the lock for longer than we would wait."""


def lock_name(model_name: str) -> str:
    return model_name + LOCK_SUFFIX


def holder_description(action: str) -> str:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{action} by {socket.gethostname()} pid {os.getpid()} since {now}"


def _try_create(client: Any, name: str, description: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=description)
        return True
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return False
        raise


def break_lock(client: Any, model_name: str) -> bool:
    """Remove a lock left by a holder that died; True if there was one."""
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(lock_name(model_name))
        return True
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise


@contextmanager
def promotion_lock(
    client: Any, model_name: str, action: str, timeout: float = 600.0, poll: float = 0.5
) -> Iterator[None]:
    """Hold ``model_name``'s promotion lock for the ``with`` block, waiting up to ``timeout``."""
    name = lock_name(model_name)
    deadline = time.monotonic() + timeout
    while not _try_create(client, name, holder_description(action)):
        if time.monotonic() >= deadline:
            try:
                held = client.get_registered_model(name).description
            except Exception:  # released meanwhile; report what we know
                held = "a holder that has just released it"
            raise LockTimeout(
                f"{model_name} is being promoted or rolled back ({held}); waited {timeout:.0f}"
                f" s for the lock, registered model {name!r}. If that process is gone, rerun "
                "with --break-lock"
            )
        time.sleep(poll)
    try:
        yield
    finally:
        break_lock(client, model_name)
