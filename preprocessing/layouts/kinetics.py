"""The Kinetics-700-2020 layout: annotation CSVs and clips in ``<split>/<label>/`` folders.

Annotations: every ``*.csv`` under the input root whose header holds the columns
``label,youtube_id,time_start,time_end,split`` (the release's ``train.csv`` and
``validate.csv``; any order of columns). Other CSVs are not read: the release's ``test.csv``
has no ``label`` column. Each row is one clip, e.g. ``abseiling,0347ZoDXyP0,102,112,train``;
``split`` is ``train``, ``validate`` or ``test``; times are whole seconds.

Clips: ``<root>/<split>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>``
(``.mp4`` first, then ``.mkv``, ``.webm``, ``.avi``; a second match is a duplicate),
the label folder named as the label, or with its spaces replaced by ``_`` (both forms exist
among the public downloaders). The file holds the clip already cut; the times are not used
to seek.

Labels: the sorted label names of the ``train`` rows (700 in the release), or of all rows
when no CSV has a ``train`` row; ``label`` is the index in that list, so every split agrees.

Every input is accounted for, at stage ``scan``: a row whose clip is not found (its source
is ``<csv>:<line>``, the reason lists the paths tried), a row whose label is not among the
train labels (its clip is the source), a malformed row, an unlabelled row, a second row for
the same clip, a second file for a row, a file under a split folder that no row names (the
reason names the row that has the same clip name elsewhere, if any) and a non-video file
under a split folder. Only the split folders the CSVs name are walked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from preprocessing.engine.records import KineticsClip, Rejected, ScanResult

SPLITS = ("train", "validate", "test")
COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
CLIP_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi")  # in order of preference


@dataclass(frozen=True)
class Row:
    """One row of a Kinetics CSV."""

    label: str
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    where: str  # "<csv>:<line>"

    @property
    def stem(self) -> str:
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"

    def candidates(self) -> list[str]:
        folders = list(dict.fromkeys([self.label, self.label.replace(" ", "_")]))
        return [f"{self.split}/{d}/{self.stem}{ext}" for d in folders for ext in CLIP_EXTENSIONS]


def _whole_seconds(value: str) -> int | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return int(seconds) if seconds.is_integer() and seconds >= 0 else None


def is_kinetics_csv(text: str) -> bool:
    header = next(csv.reader(io.StringIO(text)), [])
    return set(COLUMNS) <= {h.strip() for h in header}


def parse_rows(text: str, csv_name: str) -> tuple[list[Row], list[Rejected]]:
    """A Kinetics CSV -> (rows, rejects for malformed or unlabelled rows)."""
    rows: list[Row] = []
    bad: list[Rejected] = []
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
    for row in reader:
        where = f"{csv_name}:{reader.line_num}"
        fields = {k: (row.get(k) or "").strip() for k in COLUMNS}
        if not any(fields.values()):
            continue
        start, end = _whole_seconds(fields["time_start"]), _whole_seconds(fields["time_end"])
        why = ""
        if not fields["youtube_id"]:
            why = "no youtube_id"
        elif start is None or end is None:
            why = f"bad time_start/time_end {fields['time_start']!r}, {fields['time_end']!r}"
        elif fields["split"] not in SPLITS:
            why = f"unknown split {fields['split']!r}; expected one of {SPLITS}"
        if why:
            bad.append(Rejected(where, "scan", f"malformed row: {why}"))
            continue
        if not fields["label"]:
            bad.append(Rejected(where, "scan", "unlabelled row: empty label"))
            continue
        assert start is not None and end is not None
        rows.append(Row(fields["label"], fields["youtube_id"], start, end, fields["split"], where))
    return rows, bad


def scan_kinetics(root: Path) -> ScanResult:
    """Match the Kinetics CSVs' rows to the clips under ``root``; reject the rest."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    csvs = {}
    for path in sorted(root.rglob("*.csv")):
        text = path.read_text(encoding="utf-8")
        if is_kinetics_csv(text):
            csvs[path.relative_to(root).as_posix()] = text
    if not csvs:
        raise ValueError(
            f"input directory {str(root)!r} holds no CSV with the columns {','.join(COLUMNS)}: "
            "expected the Kinetics layout (train.csv, validate.csv, <split>/<label>/<clip>.mp4)"
        )
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for name, text in csvs.items():
        parsed, bad = parse_rows(text, name)
        rows += parsed
        rejected += bad
    train_labels = {r.label for r in rows if r.split == "train"}
    labels = sorted(train_labels or {r.label for r in rows})
    label_map = {name: i for i, name in enumerate(labels)}
    label_origin = "the train rows" if train_labels else "the rows"

    files: set[str] = set()
    walked = sorted({r.split for r in rows})
    for split in walked:
        for path in sorted(p for p in (root / split).rglob("*") if p.is_file()):
            source = path.relative_to(root).as_posix()
            if path.suffix.lower() in CLIP_EXTENSIONS:
                files.add(source)
            else:
                rejected.append(
                    Rejected(
                        source,
                        "scan",
                        f"unsupported extension {path.suffix!r}; expected one of {CLIP_EXTENSIONS}",
                    )
                )

    items: list[KineticsClip] = []
    claimed: set[str] = set()
    first_row: dict[tuple[str, int, int], str] = {}
    row_of_stem: dict[str, Row] = {}
    for row in rows:
        key = (row.youtube_id, row.time_start, row.time_end)
        if key in first_row:
            rejected.append(
                Rejected(
                    row.where,
                    "scan",
                    f"duplicate row for clip {row.stem!r}: already at {first_row[key]}",
                )
            )
            continue
        first_row[key] = row.where
        row_of_stem[row.stem] = row
        tried = row.candidates()
        found = [c for c in tried if c in files and c not in claimed]
        if not found:
            rejected.append(
                Rejected(
                    row.where,
                    "scan",
                    f"no clip for youtube_id {row.youtube_id!r} (label {row.label!r}): tried "
                    f"{tried}",
                )
            )
            continue
        source, others = found[0], found[1:]
        claimed.update(found)
        rejected += [
            Rejected(o, "scan", f"duplicate: the row at {row.where} is read from {source}")
            for o in others
        ]
        if row.label not in label_map:
            rejected.append(
                Rejected(
                    source,
                    "scan",
                    f"unknown label {row.label!r} ({row.where}): not among the "
                    f"{len(label_map)} labels of {label_origin}",
                )
            )
            continue
        items.append(
            KineticsClip(
                source,
                row.split,
                row.label,
                label_map[row.label],
                row.youtube_id,
                row.time_start,
                row.time_end,
            )
        )

    for source in sorted(files - claimed):
        stem = Path(source).stem
        why = f"not in any CSV: no row of {sorted(csvs)} names {source!r}"
        if stem in row_of_stem:
            other = row_of_stem[stem]
            why += (
                f"; the row at {other.where} (label {other.label!r}, split {other.split!r}) "
                f"expects {other.candidates()[0]!r}"
            )
        rejected.append(Rejected(source, "scan", why))
    rejected.sort(key=lambda r: r.source)
    return ScanResult(items=items, rejected=rejected, label_map=label_map)
