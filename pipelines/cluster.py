"""Connecting to Ray: a remote cluster when ``RAY_ADDRESS`` is set, else a local one.

Token authentication: Ray 2.60 turns token auth on for a new local cluster unless
``RAY_AUTH_MODE`` says otherwise, and writes a token to ``~/.ray/auth_token`` (reused after).
We keep that default deliberately: the local cluster's ports are reachable by other users of
the machine, and the same code path then works against a token-protected remote cluster.
``RAY_AUTH_MODE=disabled`` opts out. (Set the variable before Python starts: Ray reads it
when it is imported.) For a remote cluster the token comes from ``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as Ray reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_EXTENSIONS_DIR = Path.home() / ".cache" / "torch_extensions"


def init_ray(num_cpus: int | None = None) -> None:
    """Initialise Ray once per process (no-op if already initialised).

    From here on the engines' output goes to the command's log file (``pipelines.console``),
    as does that of the local cluster's processes started below.
    """
    import ray

    from pipelines.console import console

    console().start()
    if ray.is_initialized():
        return
    # DeepSpeed JIT-builds a comm op on first use; keep the build where it survives runs.
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(DEFAULT_EXTENSIONS_DIR))
    address = os.environ.get("RAY_ADDRESS", "")
    # Ray Data's per-operator progress dumps: the commands draw their own bars instead.
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    if address.startswith(("http://", "https://")):
        raise ValueError(
            f"RAY_ADDRESS={address} is a cluster's job API: run this command there with "
            "'perceiver-pipeline submit -- COMMAND ...', or unset RAY_ADDRESS to run it on a "
            "local cluster"
        )
    if address:
        ray.init(address=address, log_to_driver=True, **_forwarded_env())
        return
    global _STARTED_HERE
    ray.init(num_cpus=num_cpus, log_to_driver=True)
    _STARTED_HERE = True


_STARTED_HERE = False


def _forwarded_env() -> dict:
    """MLflow's address and credentials for the workers of a cluster we connect to (a local
    cluster started here inherits our environment; a running one does not). A Ray job's
    driver already has them in its job's runtime environment."""
    from pipelines.jobs.runtime import FORWARDED_ENV

    env_vars = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    if not env_vars or os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR"):
        return {}
    return {"runtime_env": {"env_vars": env_vars}}


def shutdown_ray() -> None:
    """Stop the local cluster this process started (so its last log lines reach the log
    file before the terminal is given back); leave any other cluster alone."""
    global _STARTED_HERE
    if _STARTED_HERE:
        import ray

        ray.shutdown()
        _STARTED_HERE = False
