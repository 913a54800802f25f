"""Plain records passed between the scan, the Ray Data tasks and the manifest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class ScanItem(Protocol):
    """What the generic job needs of a labelled input: where it is and which split it feeds."""

    @property
    def source(self) -> str: ...

    @property
    def split(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class InputFile:
    """One labelled input file found by a layout scan; ``source`` is relative to the root."""

    source: str
    split: str
    wnid: str
    label: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AudioClip:
    """One AudioSet segment matched to its file: the YTID and the class indices of its labels."""

    source: str
    split: str
    ytid: str
    label_indices: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label_indices"] = list(self.label_indices)
        return d


@dataclass(frozen=True)
class KineticsClip:
    """One Kinetics CSV row matched to its clip file."""

    source: str
    split: str
    label_name: str
    label: int
    youtube_id: str
    time_start: int
    time_end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FlowPair:
    """One optical-flow sample: frame 1 (the ``source``), frame 2 and the ground-truth flow,
    all relative to the input root; ``flow_format`` is ``flo`` or ``kitti_png``."""

    source: str
    split: str
    frame2: str
    flow: str
    flow_format: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rejected:
    """One input that will not become a row: where it failed and why."""

    source: str
    stage: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    """What a layout scan hands to the job: labelled inputs, scan-stage rejects, label map."""

    items: Sequence[ScanItem] = field(default_factory=list)  # e.g. InputFile, AudioClip
    rejected: list[Rejected] = field(default_factory=list)
    label_map: dict[str, int] = field(default_factory=dict)
    # How the inputs were put in splits, when the layout offers a choice (e.g. the video
    # modality's split folders, split lists or hashed fraction); recorded in the manifest.
    split_rule: str | None = None

    @property
    def inputs_seen(self) -> int:
        return len(self.items) + len(self.rejected)


class DecodeError(Exception):
    """A file that cannot become a row; ``stage`` names where it failed (e.g. ``decode``)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason
