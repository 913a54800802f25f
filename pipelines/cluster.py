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
    """Initialise Ray once per process (no-op if already initialised)."""
    import ray

    if ray.is_initialized():
        return
    # DeepSpeed JIT-builds a comm op on first use; keep the build where it survives runs.
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(DEFAULT_EXTENSIONS_DIR))
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    ray.init(num_cpus=num_cpus, log_to_driver=True)
