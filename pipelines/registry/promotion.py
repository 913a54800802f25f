"""Promote the challenger over the champion, or roll the champion back.

``promote`` holds the model's promotion lock, reads the champion, scores challenger and
champion on the same held-out split in one Ray Data pass (``score_models``: every batch is
read once and given to both), and moves ``champion`` only if the challenger wins by at
least ``margin`` on its task's metric, in that metric's direction (a higher ``val_top1``, a
lower ``val_epe``). The decision and both scores are tagged on both versions, and a move is
recorded in the champion history. ``rollback`` moves the champion back to the one before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipelines.registry import history
from pipelines.registry.lock import promotion_lock
from pipelines.registry.versions import (
    CHALLENGER,
    CHAMPION,
    client,
    run_of_version,
    set_version_tags,
    task_of_version,
    version_of_alias,
)

# A version's tags from its last promotion as the challenger, and from its last defence as
# the champion: kept apart, so a champion that defends keeps the record of how it won.
CHALLENGED = "perceiver.promotion."
DEFENDED = "perceiver.defence."


def _tag(
    uri: str,
    model_name: str,
    version: str,
    prefix: str,
    decision: str,
    score: float | None,
    opponent: str | None,
    opponent_score: float | None,
    facts: dict[str, Any],
) -> None:
    tags = {"decision": decision, **facts}
    if score is not None:
        tags["score"] = f"{score:.6f}"
    if opponent is not None and opponent_score is not None:
        tags |= {"opponent": opponent, "opponent_score": f"{opponent_score:.6f}"}
    set_version_tags(uri, model_name, version, {prefix + k: v for k, v in tags.items()})


@dataclass
class Promotion:
    model_name: str
    alias: str
    challenger: str
    champion: str | None  # the holder before the decision
    promoted: bool
    metric: str
    challenger_score: float | None
    champion_score: float | None
    margin: float
    split: str
    reason: str

    @property
    def holder(self) -> str | None:
        """The version holding the alias after the decision."""
        return self.challenger if self.promoted else self.champion


def wins(challenger: float, champion: float, margin: float, higher_is_better: bool) -> bool:
    """The challenger wins if it is better by at least ``margin`` in the metric's direction."""
    gain = challenger - champion if higher_is_better else champion - challenger
    return gain >= margin


def scoring_config(tracking_uri: str, run_id: str, overrides: Iterable[str] = ()) -> Any:
    """The pipeline config the challenger was trained with (its run's ``config.yaml``),
    with ``KEY=VALUE`` overrides (e.g. where the held-out shards are on this machine)."""
    import mlflow
    import yaml

    from pipelines.tasks import load_config

    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="config.yaml", tracking_uri=tracking_uri
    )
    with open(path) as f:
        tree = yaml.safe_load(f)
    return load_config(None, list(overrides), base=tree)


def score(cfg: Any, uris: dict[str, str], tracking_uri: str, split: str) -> Any:
    """Every model in ``uris`` on ``split``, in one Ray Data pass."""
    from pipelines.cluster import init_ray
    from pipelines.evaluation.score import score_models

    init_ray()
    return score_models(cfg, uris, tracking_uri, split, label=f"promote: score {split}")


def promote(
    tracking_uri: str,
    model_name: str,
    version: str | None = None,
    margin: float = 0.0,
    alias: str = CHAMPION,
    split: str | None = None,
    overrides: Iterable[str] = (),
    lock_timeout: float = 600.0,
) -> Promotion:
    """Score ``version`` (default: the ``challenger`` alias) against the holder of ``alias``
    and move ``alias`` to it if it wins by ``margin``."""
    from pipelines.tasks import TASKS

    if margin < 0:
        raise ValueError(f"--margin must be >= 0, got {margin}")
    c = client(tracking_uri)
    challenger = version or version_of_alias(tracking_uri, model_name, CHALLENGER)
    if challenger is None:
        raise ValueError(
            f"{model_name} has no '{CHALLENGER}' version: register one first, or pass --version"
        )
    task_name = task_of_version(tracking_uri, model_name, challenger)
    task = TASKS[task_name]
    cfg = scoring_config(
        tracking_uri, run_of_version(tracking_uri, model_name, challenger), overrides
    )
    split = split or cfg.data.val_split
    with promotion_lock(c, model_name, f"promote v{challenger}", timeout=lock_timeout):
        champion = version_of_alias(tracking_uri, model_name, alias)
        if champion == challenger:
            return Promotion(
                model_name,
                alias,
                challenger,
                champion,
                True,
                task.metric,
                None,
                None,
                margin,
                split,
                f"version {challenger} already holds '{alias}'",
            )
        if (
            champion is not None
            and task_of_version(tracking_uri, model_name, champion) != task_name
        ):
            raise ValueError(
                f"{model_name}: champion v{champion} and challenger v{challenger} are "
                "models of different tasks"
            )
        uris = {"challenger": f"models:/{model_name}/{challenger}"}
        if champion is not None:
            uris["champion"] = f"models:/{model_name}/{champion}"
        scores = score(cfg, uris, tracking_uri, split)
        ours = float(scores["challenger"].metrics[task.metric])
        theirs = float(scores["champion"].metrics[task.metric]) if champion else None
        better = "higher" if task.higher_is_better else "lower"
        if theirs is None:
            promoted, reason = True, f"first '{alias}': {task.metric} {ours:.4f} on {split}"
        else:
            promoted = wins(ours, theirs, margin, task.higher_is_better)
            verdict = "wins" if promoted else "does not win"
            reason = (
                f"v{challenger} {verdict}: {task.metric} {ours:.4f} vs v{champion}'s "
                f"{theirs:.4f} on {split} ({better} is better, margin {margin:g})"
            )
        facts = {"metric": task.metric, "split": f"{split} of {cfg.data.shards}", "margin": margin}
        outcome = ("promoted: " if promoted else "refused: ") + reason
        _tag(
            tracking_uri, model_name, challenger, CHALLENGED, outcome, ours, champion, theirs, facts
        )
        if champion is not None:
            outcome = ("replaced: " if promoted else "defended: ") + reason
            _tag(
                tracking_uri,
                model_name,
                champion,
                DEFENDED,
                outcome,
                theirs,
                challenger,
                ours,
                facts,
            )
        if promoted:
            c.set_registered_model_alias(model_name, alias, challenger)
            history.record(c, model_name, alias, "promote", challenger, champion, reason)
    return Promotion(
        model_name,
        alias,
        challenger,
        champion,
        promoted,
        task.metric,
        ours,
        theirs,
        margin,
        split,
        reason,
    )


@dataclass
class Rollback:
    model_name: str
    alias: str
    version: str  # the holder now
    replaced: str
    reason: str


def rollback(
    tracking_uri: str,
    model_name: str,
    reason: str,
    alias: str = CHAMPION,
    to_version: str | None = None,
    lock_timeout: float = 600.0,
) -> Rollback:
    """Move ``alias`` back to the version that held it before (or to ``to_version``)."""
    if not reason.strip():
        raise ValueError("rollback needs --reason: the history records why")
    c = client(tracking_uri)
    with promotion_lock(c, model_name, "rollback", timeout=lock_timeout):
        current = version_of_alias(tracking_uri, model_name, alias)
        if current is None:
            raise ValueError(f"{model_name} has no '{alias}' to roll back")
        if to_version is None:
            stack = history.lineage(history.moves(c, model_name, alias))
            if not stack or stack[-1] != current:
                raise ValueError(
                    f"'{alias}' is on v{current}, which the recorded history did not put "
                    "there (the alias was moved by hand): pass --to-version"
                )
            if len(stack) < 2:
                raise ValueError(
                    f"v{current} is the first '{alias}' of {model_name}: no "
                    "earlier one to roll back to"
                )
            to_version = stack[-2]
        c.get_model_version(model_name, to_version)  # exists, or the registry says so
        c.set_registered_model_alias(model_name, alias, to_version)
        history.record(c, model_name, alias, "rollback", to_version, current, reason)
        set_version_tags(
            tracking_uri,
            model_name,
            current,
            {"perceiver.rolled_back": f"to v{to_version}: {reason}"},
        )
    return Rollback(model_name, alias, to_version, current, reason)
