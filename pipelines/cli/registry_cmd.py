"""The registry commands: ``register``, ``promote`` and ``rollback``.

They talk to the MLflow server only (``promote`` also runs one Ray Data scoring pass), fail
fast when it is down (``pipelines.registry.errors``) and can always be re-run: a failed
``register`` leaves the training run and its logged model as they were.
"""

from __future__ import annotations

import argparse
import os

from pipelines.cli.args import add_set_arg
from pipelines.console import console

PROMOTE_DESCRIPTION = """\
Score the challenger (--version, default: the version with alias 'challenger') and the
current champion on the same held-out split in one evaluation, and move --alias (default
champion) to the challenger only if it wins by at least --margin on its task's metric, in
that metric's direction (val_top1, val_mAP: higher wins; val_epe and the autoencoder's
val_loss: lower wins). Both versions get the decision and both scores as tags; each move is
recorded in the registered model's tags (perceiver.champion.history.NNNN), which rollback
replays. One promote or rollback per model at a time (a lock in the registry).

The held-out data is the challenger's training config's data.val_split of data.shards;
--split and --set KEY=VALUE (e.g. data.shards=/path/on/this/machine) change it."""

ROLLBACK_DESCRIPTION = """\
Move --alias (default champion) back to the version that held it before the current one,
as recorded by promote (or to --to-version), and record --reason in the history and on the
version that is rolled back."""


def add_tracking_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI")


def add_lock_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=600.0,
        help="seconds to wait while another promote/rollback of the model runs (default 600)",
    )
    p.add_argument(
        "--break-lock",
        action="store_true",
        help="first remove a lock left by a promote/rollback that died",
    )


def add_register_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-id", required=True, help="MLflow run whose logged model to register")
    p.add_argument(
        "--model-name", default=None, help="registered model (default: perceiver-<task of the run>)"
    )
    p.add_argument(
        "--alias", default="challenger", help="alias the new version gets (default challenger)"
    )
    add_tracking_arg(p)


def add_promote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", required=True)
    p.add_argument("--version", default=None, help="default: the 'challenger' version")
    p.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="how much better the challenger must be, in metric units (default 0: a tie wins)",
    )
    p.add_argument("--alias", default="champion")
    p.add_argument("--split", default=None, help="held-out split (default: data.val_split)")
    add_set_arg(p, "override the challenger's training config for scoring, e.g. data.shards=DIR")
    add_lock_args(p)
    add_tracking_arg(p)


def add_rollback_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", required=True)
    p.add_argument("--reason", required=True, help="why: recorded in the history")
    p.add_argument("--to-version", default=None, help="default: the previous champion")
    p.add_argument("--alias", default="champion")
    add_lock_args(p)
    add_tracking_arg(p)


def _fail_fast() -> None:
    from pipelines.registry.errors import QUICK_FAILURE_ENV

    for key, value in QUICK_FAILURE_ENV.items():
        os.environ.setdefault(key, value)


def _break_lock(args: argparse.Namespace, uri: str) -> None:
    from pipelines.registry.lock import break_lock, lock_name
    from pipelines.registry.versions import client

    if args.break_lock and break_lock(client(uri), args.model_name):
        console().say(f"removed the lock {lock_name(args.model_name)!r}")


def run_register(args: argparse.Namespace) -> int:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.versions import TAG_TASK, client, register
    from pipelines.tracking.runs import resolve_tracking_uri

    _fail_fast()
    uri = resolve_tracking_uri(args.tracking_uri)
    rerun = f"perceiver-pipeline register --run-id {args.run_id}"
    with registry_errors(uri, f"register run {args.run_id}", rerun):
        name = args.model_name
        if name is None:
            task = client(uri).get_run(args.run_id).data.tags.get(TAG_TASK, "model")
            name = f"perceiver-{task}"
        version = register(uri, args.run_id, name, alias=args.alias or None)
    console().say(
        f"registered {name} version {version} from run {args.run_id}"
        + (f", alias '{args.alias}'" if args.alias else "")
    )
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.promotion import promote
    from pipelines.tracking.runs import resolve_tracking_uri

    _fail_fast()
    uri = resolve_tracking_uri(args.tracking_uri)
    rerun = f"perceiver-pipeline promote --model-name {args.model_name}"
    with registry_errors(uri, f"promote {args.model_name}", rerun):
        _break_lock(args, uri)
        p = promote(
            uri,
            args.model_name,
            version=args.version,
            margin=args.margin,
            alias=args.alias,
            split=args.split,
            overrides=args.overrides,
            lock_timeout=args.lock_timeout,
        )
    verdict = "moved to" if p.promoted else "stays on"
    console().say(f"'{p.alias}' {verdict} version {p.holder}: {p.reason}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.promotion import rollback
    from pipelines.tracking.runs import resolve_tracking_uri

    _fail_fast()
    uri = resolve_tracking_uri(args.tracking_uri)
    with registry_errors(uri, f"rollback {args.model_name}"):
        _break_lock(args, uri)
        r = rollback(
            uri,
            args.model_name,
            args.reason,
            alias=args.alias,
            to_version=args.to_version,
            lock_timeout=args.lock_timeout,
        )
    console().say(f"'{r.alias}' moved back from version {r.replaced} to {r.version}: {r.reason}")
    return 0
