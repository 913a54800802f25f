"""The champion's history, which MLflow does not keep: one registered-model tag per move.

Each move of the alias is a tag ``perceiver.<alias>.history.<NNNN>`` holding JSON (the
version, the one it replaced, promote or rollback, why, when). Replaying them gives the
lineage: a promotion pushes a version, a rollback pops back to the previous one. Written
only under the promotion lock, so the sequence numbers never collide.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Move:
    seq: int
    action: str  # "promote" or "rollback"
    version: str
    replaced: str | None
    reason: str
    at: str


def _prefix(alias: str) -> str:
    return f"perceiver.{alias}.history."


def moves(client: Any, model_name: str, alias: str) -> list[Move]:
    """Every recorded move of ``alias``, oldest first."""
    tags = client.get_registered_model(model_name).tags
    prefix = _prefix(alias)
    found = [Move(**json.loads(v)) for k, v in tags.items() if k.startswith(prefix)]
    return sorted(found, key=lambda m: m.seq)


def record(
    client: Any,
    model_name: str,
    alias: str,
    action: str,
    version: str,
    replaced: str | None,
    reason: str,
) -> Move:
    past = moves(client, model_name, alias)
    move = Move(
        seq=(past[-1].seq + 1) if past else 1,
        action=action,
        version=version,
        replaced=replaced,
        reason=reason,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    client.set_registered_model_tag(
        model_name, f"{_prefix(alias)}{move.seq:04d}", json.dumps(asdict(move))
    )
    return move


def lineage(history: list[Move]) -> list[str]:
    """The stack of champions: promotions push, rollbacks pop."""
    stack: list[str] = []
    for move in history:
        if move.action == "promote":
            stack.append(move.version)
        elif stack:
            stack.pop()
            if not stack or stack[-1] != move.version:
                stack.append(move.version)
    return stack
