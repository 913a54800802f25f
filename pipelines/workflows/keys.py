"""Step keys: a step is done when a step with the same key finished before.

A key hashes the step's name, its config, its input and the code version
(``pipelines.tracking.provenance``). The input is what the step reads:

- preprocess: the raw folder (every file's path, size and modification time); a finished
  preprocess counts only while the shards are still the ones it left (``still_valid``);
- train: the shards (manifest version and hash), so new data means a new key;
- evaluate, register: the training run they take their model from;
- promote: the registered version.

Because each input names its upstream output, a step whose upstream data changed gets a new
key and runs again, and so does everything after it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipelines.tracking.provenance import (
    code_version,
    config_hash,
    data_key,
    short_hash,
    training_config_hash,
)


def folder_fingerprint(root: Path) -> str:
    """A hash of every file under ``root``: relative path, size, modification time."""
    if not Path(root).is_dir():
        raise ValueError(f"the preprocess input {str(root)!r} is not a folder")
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            st = path.stat()
            entries.append((path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return short_hash(entries)


def current_data(shards: Path) -> str | None:
    """The shards' data key, or None before the first preprocessing."""
    from preprocessing.engine.manifest import MANIFEST_NAME

    return str(data_key(shards)) if (Path(shards) / MANIFEST_NAME).is_file() else None


def step_config(step: Any, pipeline: Any, model_name: str) -> Any:
    """The part of the configuration that decides a step's result."""
    if step.kind == "preprocess":
        return {
            "modality": pipeline.preprocess.modality,
            "options": pipeline.preprocess.model_dump(mode="json"),
            "shards": str(pipeline.data.shards),
        }
    if step.kind == "train":
        return training_config_hash(pipeline)
    if step.kind == "evaluate":
        return {
            "split": step.split or pipeline.data.val_split,
            "evaluate": pipeline.evaluate.model_dump(mode="json"),
        }
    if step.kind == "register":
        return {"model_name": model_name}
    return {"model_name": model_name, "margin": step.margin, "alias": step.alias}


def step_input(step: Any, pipeline: Any, upstream: dict[str, Any]) -> Any:
    """What the step reads, as it is now (``upstream``: earlier steps' outputs)."""
    if step.kind == "preprocess":
        return {"raw": folder_fingerprint(step.input)}
    if step.kind == "train":
        data = current_data(pipeline.data.shards)
        if data is None:
            raise ValueError(
                f"no shards at {pipeline.data.shards}: add a preprocess step or fix data.shards"
            )
        return {"data": data}
    if step.kind in ("evaluate", "register"):
        return {"run_id": upstream["run_id"]}
    return {"version": upstream["version"]}


def step_key(step: Any, pipeline: Any, model_name: str, upstream: dict[str, Any]) -> str:
    return short_hash(
        {
            "step": step.kind,
            "config": config_hash({"c": step_config(step, pipeline, model_name)}),
            "input": step_input(step, pipeline, upstream),
            "code": code_version(),
        }
    )


def still_valid(step: Any, pipeline: Any, outputs: dict[str, Any]) -> bool:
    """Whether a finished step's outputs still stand: a preprocess step's shards must be
    those it published (not deleted or rewritten since)."""
    if step.kind == "preprocess":
        return bool(outputs.get("data") == current_data(pipeline.data.shards))
    return True
