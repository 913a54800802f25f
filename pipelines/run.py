"""The whole chain in one process: preprocess, train, evaluate, register, promote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.registry import Promotion


@dataclass
class PipelineSummary:
    tracking_uri: str
    run_id: str
    shards: dict[str, int] = field(default_factory=dict)  # split -> shard files
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)
    inputs_seen: int = 0
    train_metrics: dict[str, Any] = field(default_factory=dict)
    train_history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint_path: str | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    model_name: str = ""
    version: str = ""
    promotion: Promotion | None = None


def step(n: int, total: int, what: str) -> None:
    print(f"\n=== [{n}/{total}] {what} ===", flush=True)


def quarantine_rows(shards: Path) -> list[tuple[str, str]]:
    import pyarrow.parquet as pq

    from preprocessing.engine.manifest import read_manifest

    manifest = read_manifest(shards)
    out: list[tuple[str, str]] = []
    for entry in manifest.quarantine:
        table = pq.read_table(Path(shards) / entry.path)
        out.extend(zip(table["source"].to_pylist(), table["reason"].to_pylist(), strict=True))
    return out


def run_pipeline(
    cfg: PipelineConfig, input_dir: Path | None = None, overwrite: bool = False
) -> PipelineSummary:
    """Run every step; ``input_dir`` (raw ImageNet layout) adds the preprocessing step."""
    from pipelines.cluster import init_ray
    from pipelines.evaluate import evaluate
    from pipelines.registry import promote, register
    from pipelines.tracking import end_run, resolve_tracking_uri, start_run
    from pipelines.train import train
    from preprocessing.engine.manifest import read_manifest
    from preprocessing.modalities.image import preprocess_images

    total = 5 if input_dir is not None else 4
    n = 0
    init_ray()
    if input_dir is not None:
        n += 1
        step(n, total, f"preprocess {input_dir} -> {cfg.data.shards} (Ray Data)")
        preprocess_images(input_dir, cfg.data.shards, cfg.preprocess, overwrite=overwrite)
    manifest = read_manifest(cfg.data.shards)
    tracking_uri = resolve_tracking_uri(cfg.tracking.tracking_uri)
    run_id = start_run(cfg, tracking_uri, run_name=cfg.train.run_name)
    summary = PipelineSummary(tracking_uri=tracking_uri, run_id=run_id)
    summary.shards = {s: len(e.shards) for s, e in manifest.splits.items()}
    summary.rows = {s: e.rows for s, e in manifest.splits.items()}
    summary.inputs_seen = manifest.inputs_seen
    summary.quarantined = quarantine_rows(cfg.data.shards)
    try:
        n += 1
        step(
            n,
            total,
            f"train: {cfg.train.num_workers} workers, DeepSpeed ZeRO-{cfg.deepspeed.zero_stage}, "
            f"{cfg.train.epochs} epochs (Ray Train)",
        )
        outcome = train(cfg, tracking_uri=tracking_uri, run_id=run_id)
        summary.train_metrics = outcome.metrics
        summary.train_history = outcome.history
        summary.checkpoint_path = outcome.checkpoint_path
        n += 1
        step(n, total, f"evaluate on '{cfg.data.val_split}' (Ray Data batch inference)")
        summary.val_metrics = evaluate(cfg, run_id, tracking_uri).metrics
        n += 1
        step(n, total, f"register '{cfg.tracking.model_name}' in the MLflow registry")
        summary.model_name = cfg.tracking.model_name
        summary.version = register(tracking_uri, run_id, cfg.tracking.model_name)
        n += 1
        step(
            n, total, f"promote: move '{cfg.tracking.alias}' if {cfg.tracking.metric} is not worse"
        )
        summary.promotion = promote(
            tracking_uri,
            cfg.tracking.model_name,
            summary.version,
            alias=cfg.tracking.alias,
            metric=cfg.tracking.metric,
        )
    except BaseException:
        end_run(tracking_uri, run_id, status="FAILED")
        raise
    end_run(tracking_uri, run_id)
    return summary


def ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri}   (then open http://127.0.0.1:5000)"


def format_summary(s: PipelineSummary) -> str:
    lines = ["", "=== summary ==="]
    shards = ", ".join(f"{k}: {v} shards / {s.rows.get(k, 0)} rows" for k, v in s.shards.items())
    lines.append(f"data         {shards}; {s.inputs_seen} inputs seen")
    lines.append(f"quarantined  {len(s.quarantined)} file(s)")
    for source, reason in s.quarantined:
        lines.append(f"             - {source}: {reason}")
    tm = s.train_metrics
    if tm:
        lines.append(
            f"train        epoch {tm.get('epoch')}: loss {tm.get('train_loss', float('nan')):.4f}, "
            f"top-1 {tm.get('train_top1', float('nan')):.3f}"
        )
    if s.val_metrics:
        vm = s.val_metrics
        lines.append(
            f"val          top-1 {vm.get('val_top1', float('nan')):.3f}, "
            f"top-5 {vm.get('val_top5', float('nan')):.3f}, "
            f"loss {vm.get('val_loss', float('nan')):.4f}"
        )
    if s.checkpoint_path:
        lines.append(f"checkpoint   {s.checkpoint_path}")
    lines.append(f"mlflow run   {s.run_id}  ({s.tracking_uri})")
    if s.version:
        lines.append(f"model        {s.model_name} version {s.version}")
    p = s.promotion
    if p is not None:
        verdict = "moved to" if p.promoted else "stays on"
        lines.append(f"alias        '{p.alias}' {verdict} version {p.holder} ({p.reason})")
        lines.append(f"load it      mlflow.pytorch.load_model('models:/{p.model_name}@{p.alias}')")
    lines.append(f"MLflow UI    {ui_hint(s.tracking_uri)}")
    return "\n".join(lines)
