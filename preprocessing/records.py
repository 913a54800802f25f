"""Plain records passed between the scan, the Ray Data tasks and the manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InputFile:
    """One labelled input file found by a layout scan; ``source`` is relative to the root."""

    source: str
    split: str
    wnid: str
    label: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Rejected:
    """One input that will not become a row: where it failed and why."""

    source: str
    stage: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)
