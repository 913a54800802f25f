"""The Ray token a job client sends, and what to tell the user when the cluster refuses it.

The token comes from ``RAY_AUTH_TOKEN``, then the file ``RAY_AUTH_TOKEN_PATH`` names, then
``~/.ray/auth_token`` (Ray's own order), and is sent as ``Authorization: Bearer`` whatever
the client's own ``RAY_AUTH_MODE`` is (Ray's client sends it only when that says
``token``). The token is never printed or logged: messages name where it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
FIX = (
    f"set {TOKEN_ENV} to the cluster's token (or {TOKEN_PATH_ENV} to a file holding it, or "
    "put it in ~/.ray/auth_token)"
)


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


class RayAuthError(ValueError):
    """The job API refused the request: 401 (no token) or 403 (a wrong one)."""


@dataclass(frozen=True)
class Token:
    value: str | None
    source: str  # where it came from, for messages; never the value itself

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"} if self.value else {}

    def __repr__(self) -> str:  # never show the value
        return f"Token(source={self.source!r})"


def find_token() -> Token:
    """The token to send, from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or the default file."""
    value = os.environ.get(TOKEN_ENV, "").strip()
    if value:
        return Token(value, TOKEN_ENV)
    path_env = os.environ.get(TOKEN_PATH_ENV, "").strip()
    if path_env:
        path = Path(path_env).expanduser()
        if not path.is_file():
            raise RayAuthError(f"{TOKEN_PATH_ENV}={path_env} is not a file: {FIX}")
        return Token(path.read_text().strip() or None, f"{TOKEN_PATH_ENV} ({path})")
    default = default_token_path()
    if default.is_file():
        return Token(default.read_text().strip() or None, str(default))
    return Token(None, "none found")


def refusal(message: str, address: str, token: Token) -> RayAuthError | None:
    """A one-line error for Ray's authentication error ``message``, or None if it is not one."""
    if message.startswith("Authentication required"):  # 401
        return RayAuthError(
            f"the Ray cluster at {address} requires a token and none was sent ({token.source}): "
            f"{FIX}"
        )
    if message.startswith("Authentication failed"):  # 403
        return RayAuthError(
            f"the Ray cluster at {address} refused the token from {token.source} (a wrong "
            f"token): {FIX}"
        )
    return None
