"""The modality-independent Ray Data preprocessing job: scan result in, published manifest out.

Plan: a modality's layout scan (cheap: names and metadata only) gives labelled inputs,
scan-stage rejects and the label map. The driver groups the inputs into shard tasks of
``rows_per_shard`` inputs per split; Ray Data runs one task per shard (``Dataset.map``),
which reads, decodes (with the modality's decode function) and writes its shard and its
quarantine part itself, and returns a one-line summary. The driver then writes the scan-stage
rejects and, last, ``manifest.json``.

Nothing is lost: every input is either a row of a shard or a row of ``quarantine/``, and the
manifest is only published when ``inputs_seen == rows_written + quarantined``.

Incremental and idempotent, for scheduled runs: an input whose ``source`` is already listed
(as a row, or in quarantine after a read or decode failure) by the current manifest is not
processed again, so a re-run on the same input writes nothing, and a run after inputs were
added processes only those and publishes manifest version N+1 listing all shards. Scan-stage
rejects are re-evaluated by every run (``preprocessing.engine.incremental``): the new manifest's
scan quarantine is this run's, so a sample quarantined for a missing partner becomes a row
once the partner appears, and ``inputs_seen`` stays equal to rows + quarantined. Shards of a
run carry its version in their name (``part-v0002-00000.parquet``). A run killed before it
published leaves shards no manifest lists; the next run deletes them and redoes their inputs,
so readers never see a duplicate or a partial row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any

from preprocessing.config import FORMAT_VERSION
from preprocessing.engine.incremental import (
    SCAN_QUARANTINE_PREFIX,
    clear_output,
    is_scan_quarantine,
    previous_manifest,
    processed_sources,
    remove_unpublished,
    scan_rejects,
)
from preprocessing.engine.manifest import Manifest, ShardEntry, SplitEntry, write_manifest
from preprocessing.engine.records import Rejected, ScanResult
from preprocessing.engine.shard_task import plan_shards, quarantine_table, write_shard
from preprocessing.engine.spec import JobConfig, ModalitySpec
from preprocessing.parquet.shards import remove_stale_tmp, write_table_atomic


def merge_splits(
    previous: Manifest | None, summaries: list[dict[str, Any]]
) -> dict[str, SplitEntry]:
    """The previous manifest's splits plus the shards this run wrote, sorted by path."""
    before = previous.splits if previous else {}
    splits: dict[str, SplitEntry] = {}
    for split in sorted({*before, *(s["split"] for s in summaries)}):
        shards = list(before[split].shards) if split in before else []
        shards += [
            ShardEntry(path=s["shard_path"], rows=s["rows"])
            for s in summaries
            if s["split"] == split and s["rows"]
        ]
        shards.sort(key=lambda e: e.path)
        splits[split] = SplitEntry(rows=sum(e.rows for e in shards), shards=shards)
    return splits


def merge_row_flags(
    previous: Manifest | None, summaries: list[dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """The previous manifest's per-split flag counts plus this run's."""
    counts: dict[str, Counter[str]] = {}
    for split, flags in (previous.row_flags if previous else {}).items():
        counts.setdefault(split, Counter()).update(flags)
    for s in summaries:
        counts.setdefault(s["split"], Counter()).update(json.loads(s.get("flags") or "{}"))
    return {
        split: dict(sorted(c.items())) for split, c in sorted(counts.items()) if any(c.values())
    }


ShardProgress = Callable[[int, int], None]
"""``(shards done, shards planned)``, called as each shard task finishes."""


def run_shard_tasks(
    tasks: list[dict[str, Any]],
    input_root: Path,
    output_root: Path,
    spec: ModalitySpec,
    progress: ShardProgress | None = None,
) -> list[dict[str, Any]]:
    """Run ``write_shard`` on every task with Ray Data, one block (and task) per shard;
    ``progress(done, total)`` is called as each shard's summary arrives."""
    import ray
    from ray.data import DataContext
    from ray.data._internal.tensor_extensions.arrow import FixedShapeTensorFormat

    if not tasks:
        return []
    # Any tensor column Ray Data itself writes is Arrow's standard type, like ours.
    DataContext.get_current().arrow_fixed_shape_tensor_format = FixedShapeTensorFormat.ARROW_NATIVE
    ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
    # One map whose outputs are one-line summaries: the budget that Ray Data's per-operator
    # resource reservation guards is never at risk, and the reservation held back the
    # second task for about one task's length and each next task for ~0.1-0.2 s (measured
    # on 2 CPUs: workers busy 76% of the job's time with it, 93% without).
    ds.context.op_resource_reservation_enabled = False
    write = partial(
        write_shard, input_root=str(input_root), output_root=str(output_root), spec=spec
    )
    summaries = []
    for summary in ds.map(write, num_cpus=1).iter_rows():
        summaries.append(summary)
        if progress is not None:
            progress(len(summaries), len(tasks))
    return summaries


def run_preprocessing(
    spec: ModalitySpec,
    scan: ScanResult,
    input_root: Path,
    output_root: Path,
    config: JobConfig,
    overwrite: bool = False,
    progress: ShardProgress | None = None,
) -> Manifest:
    """Process the scanned inputs the output's manifest does not list yet; publish the manifest.

    ``input_root`` and ``output_root`` should be resolved paths; ``overwrite`` starts afresh;
    ``progress(done, total)`` follows the shard tasks.
    """
    output_root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        clear_output(output_root)
    previous = previous_manifest(
        output_root, config, scan.label_map, spec.label_source, scan.split_rule
    )
    remove_stale_tmp(output_root)
    remove_unpublished(output_root, previous, spec.splits)
    done = processed_sources(output_root, previous) if previous else set()
    rejected_before = scan_rejects(output_root, previous) if previous else []
    new_items = [f for f in scan.items if f.source not in done]
    scan_rejected = [r for r in scan.rejected if r.source not in done]
    if previous is not None and not new_items and _same(scan_rejected, rejected_before):
        return previous  # nothing new: write nothing
    version = previous.version + 1 if previous else 1

    tasks = plan_shards(new_items, config.rows_per_shard, version)
    summaries = run_shard_tasks(tasks, input_root, output_root, spec, progress)

    # Read/decode-stage quarantine accumulates; the scan-stage part is this run's scan.
    quarantine = (
        [q for q in previous.quarantine if not is_scan_quarantine(q.path)] if previous else []
    )
    quarantine += [
        ShardEntry(path=s["quarantine_path"], rows=s["quarantined"])
        for s in summaries
        if s["quarantined"]
    ]
    if scan_rejected:
        scan_path = f"{SCAN_QUARANTINE_PREFIX}v{version:04d}.parquet"
        write_table_atomic(quarantine_table(scan_rejected), output_root / scan_path)
        quarantine.append(ShardEntry(path=scan_path, rows=len(scan_rejected)))
    splits = merge_splits(previous, summaries)
    seen_before = (previous.inputs_seen - len(rejected_before)) if previous else 0
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        version=version,
        modality=spec.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        input_root=str(input_root),
        config=config.model_dump(),
        config_hash=config.config_hash(),
        schema=spec.schema_doc,
        label_map=scan.label_map,
        split_rule=scan.split_rule,
        splits=splits,
        quarantine=sorted(quarantine, key=lambda e: e.path),
        inputs_seen=seen_before + len(new_items) + len(scan_rejected),
        rows_written=sum(e.rows for e in splits.values()),
        quarantined=sum(e.rows for e in quarantine),
        row_flags=merge_row_flags(previous, summaries),
    )
    write_manifest(manifest, output_root)
    if previous is not None:  # the scan quarantine this manifest replaced
        remove_unpublished(output_root, manifest, spec.splits)
    return manifest


def _same(rejected: list[Rejected], before: list[Rejected]) -> bool:
    """The same scan-stage rejects, counted with multiplicity, in any order."""
    key = attrgetter("source", "stage", "reason")
    return sorted(map(key, rejected)) == sorted(map(key, before))
