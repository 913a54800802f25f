"""What each step kind does, in the process that runs it (the runner's, or a Ray job's).

Each function takes the workflow, the step, the earlier steps' outputs and the tracking URI,
calls the same code the matching command does, and returns its own outputs (JSON-able):
these are recorded on the step's run and passed to the steps after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipelines.console import console

Outputs = dict[str, Any]


def preprocess(wf: Any, step: Any, upstream: Outputs, uri: str) -> Outputs:
    from pipelines.chain import preprocess as run_preprocess
    from pipelines.cluster import init_ray
    from pipelines.workflows.keys import current_data

    cfg = wf.pipeline
    before = current_data(cfg.data.shards)
    init_ray()
    options = cfg.preprocess.model_dump(exclude={"modality"})
    m = run_preprocess(cfg.preprocess.modality, step.input, cfg.data.shards, options)
    after = current_data(cfg.data.shards)
    console().say(
        f"  {m.rows_written} rows, {m.quarantined} quarantined, {m.inputs_seen} inputs seen; "
        f"manifest v{m.version}" + (" (new rows)" if after != before else " (nothing new)")
    )
    return {"data": after, "manifest_version": m.version, "new_data": after != before}


def train(wf: Any, step: Any, upstream: Outputs, uri: str) -> Outputs:
    from pipelines.cluster import init_ray
    from pipelines.tasks import task_for
    from pipelines.tracking.runs import tracked_run
    from pipelines.training.driver import train as run_train
    from preprocessing.engine.manifest import read_manifest

    cfg = wf.pipeline
    task_for(cfg).check_shards(read_manifest(cfg.data.shards), str(cfg.data.shards))
    init_ray()
    with tracked_run(cfg, uri, tags={"perceiver.workflow": wf.name}) as (cfg, run_id):
        outcome = run_train(cfg, tracking_uri=uri, run_id=run_id)
    loss = outcome.metrics.get("epoch_train_loss")
    console().say(f"  training run {run_id}" + (f", loss {loss:.4f}" if loss is not None else ""))
    return {"run_id": run_id, "run_name": outcome.run_name, "checkpoint": outcome.checkpoint_path}


def evaluate(wf: Any, step: Any, upstream: Outputs, uri: str) -> Outputs:
    from pipelines.cluster import init_ray
    from pipelines.evaluation.evaluate import evaluate as run_evaluate

    init_ray()
    result = run_evaluate(wf.pipeline, upstream["run_id"], uri, step.split)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items()))
    console().say(f"  {shown}")
    return {"run_id": upstream["run_id"], "metrics": result.metrics}


def register(wf: Any, step: Any, upstream: Outputs, uri: str) -> Outputs:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.versions import register as run_register

    with registry_errors(uri, "register"):
        version = run_register(uri, upstream["run_id"], wf.model_name)
    console().say(f"  {wf.model_name} version {version} (alias 'challenger')")
    return {"run_id": upstream["run_id"], "version": version}


def promote(wf: Any, step: Any, upstream: Outputs, uri: str) -> Outputs:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.promotion import promote as run_promote

    with registry_errors(uri, "promote"):
        p = run_promote(
            uri,
            wf.model_name,
            version=upstream["version"],
            margin=step.margin,
            alias=step.alias,
            overrides=[f"data.shards={wf.pipeline.data.shards}"],
        )
    verdict = "moved to" if p.promoted else "stays on"
    console().say(f"  '{p.alias}' {verdict} version {p.holder}: {p.reason}")
    return {"version": upstream["version"], "promoted": p.promoted, "holder": p.holder}


STEPS: dict[str, Callable[[Any, Any, Outputs, str], Outputs]] = {
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "register": register,
    "promote": promote,
}
