"""What a modality plugs into the generic preprocessing job (``preprocessing.engine.run``).

A modality is a scan result (labelled inputs, scan-stage rejects, label map; see
``preprocessing.engine.records.ScanResult``), plus this ``ModalitySpec``: a per-file decode
function that turns the file's bytes and its scan record into the row's columns, and the
shard schema. The job adds the two columns every shard has, ``source`` and ``key``, itself.
The plug-ins themselves are in ``preprocessing.modalities``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

# bytes of the file, its scan record (``ScanItem.to_dict()``) -> the row's columns other than
# ``source`` (and ``key``: the sha256 of the bytes, unless the decoder returns its own);
# raises ``preprocessing.engine.records.DecodeError`` for a file to quarantine.
RowDecoder = Callable[[bytes, Mapping[str, Any]], dict[str, Any]]
# a decoded row -> the names of the flags it raises (e.g. ``audio_missing``); the manifest's
# ``row_flags`` counts the rows raising each flag, per split.
RowFlags = Callable[[Mapping[str, Any]], Iterable[str]]
# The key under which a decoder may return its row's flag names, for ``flags_in_row``; the
# writer only writes the schema's columns, so the key never reaches a shard.
FLAGS_KEY = "_flags"

COMMON_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("source", pa.string(), "string (path relative to the input root)"),
    ("key", pa.string(), "string (sha256 of the source file's bytes)"),
)


class JobConfig(Protocol):
    """The part of a preprocessing config (a pydantic model) that the generic job uses."""

    @property
    def rows_per_shard(self) -> int: ...

    def config_hash(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModalitySpec:
    """A modality's plug-in for the generic job. Must pickle: it is shipped to Ray tasks."""

    name: str  # the manifest's ``modality``
    splits: tuple[str, ...]  # split folders shards may be written to
    columns: pa.Schema  # the decoded columns, in order; fixed-shape tensors for arrays
    columns_doc: dict[str, str]  # column -> human-readable type, for the manifest's ``schema``
    decode: RowDecoder
    label_source: str  # what defines the label map, named in the "it changed" error
    row_flags: RowFlags | None = None  # counted per split in the manifest's ``row_flags``
    key_doc: str | None = None  # when the decoder returns its own ``key``: what it hashes

    @property
    def schema(self) -> pa.Schema:
        """The full shard schema: the decoded columns, then ``source`` and ``key``."""
        return pa.schema([*self.columns, *((n, t) for n, t, _ in COMMON_COLUMNS)])

    @property
    def schema_doc(self) -> dict[str, str]:
        common = {n: doc for n, _, doc in COMMON_COLUMNS}
        if self.key_doc is not None:
            common["key"] = self.key_doc
        return {**self.columns_doc, **common}


def flags_in_row(row: Mapping[str, Any]) -> Iterable[str]:
    """A ``RowFlags`` for decoders that return their flag names under ``FLAGS_KEY``."""
    flags: Iterable[str] = row.get(FLAGS_KEY, ())
    return flags
