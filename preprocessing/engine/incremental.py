"""What an output folder already holds, for incremental runs and for recovery after a kill.

A run extends the published manifest only if its config hash, label map and split rule (when
the layout records one) are unchanged; it processes only inputs whose ``source`` that
manifest does not list yet (as a row, or in quarantine after a read or decode failure), and
first deletes the shard and quarantine files no published manifest lists, which a run killed
before it published left behind.

Scan-stage rejects (a sample missing a partner file, an unmatched file, an unlabelled one)
are not final: they describe the layout as it was scanned, so every run scans again, and the
manifest's scan quarantine is replaced by this run's (``scan_rejects``). A sample whose
missing partner has appeared becomes a row.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from preprocessing.engine.manifest import MANIFEST_NAME, Manifest, read_manifest
from preprocessing.engine.records import Rejected
from preprocessing.engine.shard_task import QUARANTINE_DIR
from preprocessing.engine.spec import JobConfig

SCAN_QUARANTINE_PREFIX = f"{QUARANTINE_DIR}/scan-"


def is_scan_quarantine(path: str) -> bool:
    """Whether a manifest-listed file holds scan-stage rejects (``quarantine/scan-v*.parquet``)."""
    return path.startswith(SCAN_QUARANTINE_PREFIX)


def clear_output(output: Path) -> None:
    """Delete everything under ``output`` (for ``--overwrite``)."""
    for child in output.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def previous_manifest(
    output: Path,
    config: JobConfig,
    label_map: dict[str, int],
    label_source: str,
    split_rule: str | None = None,
) -> Manifest | None:
    """The published manifest to extend, after checking that this run may extend it."""
    if not (output / MANIFEST_NAME).exists():
        return None
    previous = read_manifest(output)
    if previous.config_hash != config.config_hash():
        raise ValueError(
            f"output directory {str(output)!r} was written with config {previous.config} "
            f"(hash {previous.config_hash}); this run's is {config.model_dump()} "
            f"(hash {config.config_hash()}): pass --overwrite to rebuild it"
        )
    if previous.label_map != label_map:
        raise ValueError(
            f"{label_source} changed since {str(output)!r} was written "
            f"({len(previous.label_map)} -> {len(label_map)} classes), which changes label "
            "indices: pass --overwrite to rebuild it"
        )
    if None not in (previous.split_rule, split_rule) and previous.split_rule != split_rule:
        raise ValueError(
            f"the split rule changed since {str(output)!r} was written ({previous.split_rule!r} "
            f"-> {split_rule!r}), which would move inputs between splits: pass --overwrite "
            "to rebuild it"
        )
    return previous


def remove_unpublished(
    output: Path, previous: Manifest | None, split_dirs: Iterable[str]
) -> list[str]:
    """Delete shard and quarantine files no published manifest lists (a killed run's)."""
    listed = previous.all_files() if previous else set()
    folders = {*split_dirs, QUARANTINE_DIR}
    removed = []
    for path in sorted(output.rglob("*.parquet")):
        rel = path.relative_to(output).as_posix()
        if rel.split("/")[0] in folders and rel not in listed:
            path.unlink()
            removed.append(rel)
    return removed


def processed_sources(output: Path, manifest: Manifest) -> set[str]:
    """Sources the manifest accounts for for good: rows, and read/decode-stage rejects."""
    import pyarrow.parquet as pq

    return {
        source
        for rel in sorted(manifest.all_files())
        if not is_scan_quarantine(rel)
        for source in pq.read_table(output / rel, columns=["source"])["source"].to_pylist()
    }


def scan_rejects(output: Path, manifest: Manifest) -> list[Rejected]:
    """The scan-stage rejects the manifest lists (re-evaluated by every run)."""
    import pyarrow.parquet as pq

    return [
        Rejected(**row)
        for entry in manifest.quarantine
        if is_scan_quarantine(entry.path)
        for row in pq.read_table(output / entry.path).to_pylist()
    ]
