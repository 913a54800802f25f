"""The whole chain in one process: [preprocess], train, evaluate, register, promote.

Every task runs the same steps; what differs (shards, model, loss, metrics, promotion
direction) comes from the task (``pipelines.tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.console import console


@dataclass
class PipelineSummary:
    task: str
    tracking_uri: str
    run_id: str
    shards: dict[str, int] = field(default_factory=dict)  # split -> shard files
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    inputs_seen: int = 0
    train_metrics: dict[str, Any] = field(default_factory=dict)
    train_history: list[dict[str, Any]] = field(default_factory=list)
    run_name: str = ""
    storage_path: str = ""
    checkpoint_path: str | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    pictures: list[str] = field(default_factory=list)
    model_name: str = ""
    version: str = ""
    promotion: Any = None
    log_path: Path | None = None


def quarantine_rows(shards: Path) -> list[tuple[str, str]]:
    import pyarrow.parquet as pq

    from preprocessing.engine.manifest import read_manifest

    manifest = read_manifest(shards)
    out: list[tuple[str, str]] = []
    for entry in manifest.quarantine:
        table = pq.read_table(Path(shards) / entry.path)
        out.extend(zip(table["source"].to_pylist(), table["reason"].to_pylist(), strict=True))
    return out


def preprocess(
    modality: str,
    input_dir: Path,
    output_dir: Path,
    options: dict[str, Any],
    overwrite: bool = False,
) -> Any:
    """Run a modality's Ray Data job with a progress bar over its shard tasks."""
    from preprocessing.modalities import run_modality

    with console().progress(None, f"preprocess {modality}", unit="shard") as bar:

        def on_shard(done: int, total: int) -> None:
            bar.bar.total = total
            bar.set(done)

        return run_modality(modality, input_dir, output_dir, options, overwrite, on_shard)


def run_pipeline(
    cfg: Any, input_dir: Path | None = None, overwrite: bool = False
) -> PipelineSummary:
    """Run every step; ``input_dir`` (raw data of the task's modality) adds preprocessing."""
    from pipelines.cluster import init_ray
    from pipelines.evaluation.evaluate import evaluate
    from pipelines.tasks import task_for
    from pipelines.tracking.runs import resolve_tracking_uri, tracked_run
    from pipelines.training.driver import train
    from preprocessing.engine.manifest import read_manifest

    task = task_for(cfg)
    out = console()
    total = 5 if input_dir is not None else 4
    n = 0
    init_ray()
    if input_dir is not None:
        n += 1
        out.step(n, total, f"preprocess {input_dir} -> {cfg.data.shards} (Ray Data)")
        options = cfg.preprocess.model_dump(exclude={"modality"})
        manifest = preprocess(task.modality, input_dir, cfg.data.shards, options, overwrite)
        num_shards = sum(len(e.shards) for e in manifest.splits.values())
        out.say(
            f"{manifest.rows_written} rows in {num_shards} shards, {manifest.quarantined} "
            f"quarantined, {manifest.inputs_seen} inputs seen"
        )
    manifest = read_manifest(cfg.data.shards)
    task.check_shards(manifest, str(cfg.data.shards))
    tracking_uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    with tracked_run(cfg, tracking_uri) as (cfg, run_id):
        summary = PipelineSummary(task=cfg.task, tracking_uri=tracking_uri, run_id=run_id)
        summary.shards = {s: len(e.shards) for s, e in manifest.splits.items()}
        summary.rows = {s: e.rows for s, e in manifest.splits.items()}
        summary.inputs_seen = manifest.inputs_seen
        summary.quarantined = quarantine_rows(cfg.data.shards)
        summary.log_path = out.log_path
        n += 1
        out.step(
            n,
            total,
            f"train {cfg.task}: {cfg.train.num_workers} workers, DeepSpeed ZeRO-"
            f"{cfg.deepspeed.zero_stage}, {cfg.train.epochs} epochs (Ray Train)",
        )
        outcome = train(cfg, tracking_uri=tracking_uri, run_id=run_id)
        summary.train_metrics = outcome.metrics
        summary.train_history = outcome.history
        summary.run_name = outcome.run_name
        summary.storage_path = outcome.storage_path
        summary.checkpoint_path = outcome.checkpoint_path
        n += 1
        out.step(n, total, f"evaluate on '{cfg.data.val_split}' (Ray Data batch inference)")
        result = evaluate(cfg, run_id, tracking_uri)
        summary.val_metrics, summary.pictures = result.metrics, result.pictures
    # The run is complete; a registry that fails below loses nothing, and says what to rerun.
    register_and_promote(cfg, task, summary, n, total)
    return summary


def register_and_promote(cfg: Any, task: Any, summary: PipelineSummary, n: int, total: int) -> None:
    from pipelines.registry.errors import registry_errors
    from pipelines.registry.promotion import promote
    from pipelines.registry.versions import register

    out = console()
    tracking_uri, run_id = summary.tracking_uri, summary.run_id
    n += 1
    summary.model_name = task.model_name
    out.step(n, total, f"register '{summary.model_name}' in the MLflow registry")
    with registry_errors(
        tracking_uri,
        "register",
        f"perceiver-pipeline register --run-id {run_id} --model-name {summary.model_name}",
    ):
        summary.version = register(tracking_uri, run_id, summary.model_name)
    n += 1
    direction = "higher" if task.higher_is_better else "lower"
    out.step(
        n,
        total,
        f"promote: score challenger v{summary.version} and '{cfg.tracking.alias}' on "
        f"'{cfg.data.val_split}', move it if {task.metric} wins ({direction} is better)",
    )
    with registry_errors(
        tracking_uri,
        "promote",
        f"perceiver-pipeline promote --model-name {summary.model_name} --version {summary.version}",
    ):
        summary.promotion = promote(
            tracking_uri,
            summary.model_name,
            version=summary.version,
            margin=cfg.tracking.promotion_margin,
            alias=cfg.tracking.alias,
            overrides=[f"data.shards={cfg.data.shards}"],
        )


def ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri}   (then open http://127.0.0.1:5000)"


def _metrics_line(metrics: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k in metrics)


def format_summary(s: PipelineSummary) -> str:
    lines = ["", "=== summary ==="]
    shards = ", ".join(f"{k}: {v} shards / {s.rows.get(k, 0)} rows" for k, v in s.shards.items())
    lines.append(f"data         {shards}; {s.inputs_seen} inputs seen")
    lines.append(f"quarantined  {len(s.quarantined)} file(s)")
    for source, reason in s.quarantined:
        lines.append(f"             - {source}: {reason}")
    tm = s.train_metrics
    if tm:
        train_keys = ["epoch_train_loss", *sorted(k for k in tm if k.startswith("train_"))]
        lines.append(
            f"train        epoch {tm.get('epoch')}, step {tm.get('step')}: "
            f"{_metrics_line(tm, train_keys)}; data wait {tm.get('data_wait_fraction', 0):.1%}"
        )
    if s.val_metrics:
        val_keys = sorted(k for k in s.val_metrics if not k.endswith("_samples"))
        lines.append(f"val          {_metrics_line(s.val_metrics, val_keys)}")
    if s.pictures:
        lines.append(f"pictures     {', '.join(s.pictures)} (MLflow artefacts of the run)")
    if s.checkpoint_path:
        lines.append(f"checkpoint   {s.checkpoint_path}")
    if s.run_name:
        lines.append(f"train run    {s.run_name}")
        if s.storage_path:
            lines.append(
                f"resume it    perceiver-pipeline train --resume {s.run_name} "
                f"--storage-path {s.storage_path}"
            )
    lines.append(f"mlflow run   {s.run_id}  ({s.tracking_uri})")
    if s.version:
        lines.append(f"model        {s.model_name} version {s.version} (alias 'challenger')")
    p = s.promotion
    if p is not None:
        verdict = "moved to" if p.promoted else "stays on"
        lines.append(f"alias        '{p.alias}' {verdict} version {p.holder} ({p.reason})")
        lines.append(f"load it      mlflow.pytorch.load_model('models:/{p.model_name}@{p.alias}')")
    lines.append(f"MLflow UI    {ui_hint(s.tracking_uri)}")
    if s.log_path is not None:
        lines.append(f"engine logs  {s.log_path}")
    return "\n".join(lines)
