"""What a result was made from: the code, the config and the data, each as a short hash.

These keys tag training runs and registered versions (so a registry entry says which data,
config and code made it) and key the workflow's steps (``pipelines.workflows``), so a step
is redone exactly when one of them changed.

- ``code_version``: a hash of the three packages' sources (``*.py`` and the shipped YAML),
  the same on a laptop and on a cluster running the same code, dirty checkout or not.
- ``config_hash``: a hash of a config tree, keys sorted.
- ``data_key``: a preprocessing output's manifest version and a hash of what it lists (shards
  and their rows, quarantine, label map, preprocessing config).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PACKAGES = ("perceiver", "preprocessing", "pipelines")
TAG_CODE = "perceiver.code_version"
TAG_CONFIG = "perceiver.config_hash"
TAG_DATA_VERSION = "perceiver.data_version"
TAG_DATA_HASH = "perceiver.data_hash"


def short_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def config_hash(tree: dict[str, Any]) -> str:
    return short_hash(tree)


def training_config_hash(cfg: Any) -> str:
    """The hash of what decides a training result: the config less where it is logged and
    the run's generated name."""
    tree = cfg.model_dump(mode="json", exclude={"tracking": True, "train": {"run_name"}})
    return config_hash(tree)


@dataclass(frozen=True)
class DataKey:
    version: int
    hash: str

    def __str__(self) -> str:
        return f"v{self.version}-{self.hash}"


def data_key(shards: Path | str) -> DataKey:
    """The manifest version of a preprocessing output and a hash of what it publishes."""
    from preprocessing.engine.manifest import read_manifest

    m = read_manifest(Path(shards))
    listed = {
        "splits": {s: [(e.path, e.rows) for e in entry.shards] for s, entry in m.splits.items()},
        "quarantine": [(e.path, e.rows) for e in m.quarantine],
        "label_map": m.label_map,
        "config_hash": m.config_hash,
    }
    return DataKey(m.version, short_hash(listed))


def run_tags(cfg: Any) -> dict[str, str]:
    """The provenance tags of a training run of ``cfg``."""
    data = data_key(cfg.data.shards)
    return {
        TAG_CODE: code_version(),
        TAG_CONFIG: training_config_hash(cfg),
        TAG_DATA_VERSION: str(data.version),
        TAG_DATA_HASH: data.hash,
    }
