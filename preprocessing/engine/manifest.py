"""``manifest.json``: what a preprocessing output holds, written last and atomically.

Readers should trust only the shards a manifest lists. The manifest also carries the
reconciliation ``inputs_seen == rows_written + quarantined``; a manifest that breaks it fails
validation and is never published. Each run that adds data publishes a new ``version``; a
copy of every version is kept in ``manifests/v<NNNN>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

MANIFEST_NAME = "manifest.json"
VERSIONS_DIR = "manifests"


class ShardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="path of the Parquet file, relative to the output root")
    rows: int = Field(ge=0)


class SplitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=0)
    shards: list[ShardEntry]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int
    version: int = Field(1, ge=1, description="bumped by every run that adds shards")
    modality: str
    created_at: str
    input_root: str
    config: dict[str, object]
    config_hash: str
    schema_: dict[str, str] = Field(alias="schema")
    label_map: dict[str, int]
    split_rule: str | None = Field(
        None,
        description="how inputs were put in splits, for layouts that offer a choice (e.g. "
        "split lists, a hashed val fraction); absent for layouts with one rule",
    )
    splits: dict[str, SplitEntry]
    quarantine: list[ShardEntry]
    inputs_seen: int = Field(ge=0)
    rows_written: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    row_flags: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="split -> flag -> rows raising it (e.g. kinetics 'audio_missing'); "
        "absent in manifests written before flags existed",
    )

    @model_validator(mode="after")
    def _reconciles(self) -> Manifest:
        split_rows = sum(s.rows for s in self.splits.values())
        if split_rows != self.rows_written:
            raise ValueError(f"splits hold {split_rows} rows but rows_written={self.rows_written}")
        q_rows = sum(q.rows for q in self.quarantine)
        if q_rows != self.quarantined:
            raise ValueError(f"quarantine holds {q_rows} rows but quarantined={self.quarantined}")
        for split, flags in self.row_flags.items():
            rows = self.splits[split].rows if split in self.splits else 0
            for flag, n in flags.items():
                if not 0 <= n <= rows:
                    raise ValueError(f"row_flags[{split!r}][{flag!r}]={n} but the split has {rows}")
        if self.inputs_seen != self.rows_written + self.quarantined:
            raise ValueError(
                f"inputs_seen={self.inputs_seen} != rows_written={self.rows_written} + "
                f"quarantined={self.quarantined}: an input was lost"
            )
        return self

    def all_files(self) -> set[str]:
        """Every Parquet file the manifest lists (shards and quarantine parts)."""
        files = {s.path for e in self.splits.values() for s in e.shards}
        return files | {q.path for q in self.quarantine}

    def shard_paths(self, split: str) -> list[str]:
        if split not in self.splits:
            raise ValueError(f"split {split!r} not in manifest; it has {sorted(self.splits)}")
        return [s.path for s in self.splits[split].shards]


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_manifest(manifest: Manifest, root: Path) -> Path:
    """Publish ``manifest``: its versioned copy first, then ``manifest.json`` (the switch)."""
    text = json.dumps(manifest.model_dump(by_alias=True), indent=2) + "\n"
    _write_atomic(Path(root) / VERSIONS_DIR / f"v{manifest.version:04d}.json", text)
    path = Path(root) / MANIFEST_NAME
    _write_atomic(path, text)
    return path


def read_manifest(root: Path) -> Manifest:
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(
            f"{str(path)!r} not found: is {str(root)!r} the output of "
            "'perceiver-pipeline preprocess'?"
        )
    return Manifest.model_validate_json(path.read_text())
