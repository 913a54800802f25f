"""The AudioSet layout: segment CSVs, the class list, and audio files named by YouTube ID.

Metadata (each found by name anywhere under the input root, at most once):

- ``class_labels_indices.csv``: a header ``index,mid,display_name``, then one row per class,
  e.g. ``1,/m/05zppz,"Male speech, man speaking"``; 527 rows in the real release, any count
  accepted. The indices must be exactly 0..n-1. The label map is mid -> index.
- Segment lists: ``balanced_train_segments.csv`` and ``unbalanced_train_segments.csv`` feed
  split ``train``, ``eval_segments.csv`` split ``val`` (at least one must exist). Each starts
  with ``#`` comment lines (three in the real files, the last naming the columns), then rows
  ``YTID, start_seconds, end_seconds, "label,label"``: a space after each separator of the row,
  and the positive labels (mids) quoted and comma-separated without spaces.

Audio files (``.wav``, ``.flac``, ``.mp3``, any case) may lie anywhere under the root. A row
``abc, 30.000, 40.000, ...`` matches the file whose stem is, in this order of preference,
``abc``, ``Yabc``, ``abc_30.000_40.000`` or ``Yabc_30.000_40.000`` (start and end as written
in the CSV, with three decimals, or as integers when whole: ``abc_30_40``). The file is taken
to hold the segment already (every public mirror cuts the 10 s segment); start and end are
not used to seek.

Every input is accounted for, at stage ``scan``: a row whose file is not found (its source is
``<csv>:<line>``, the reason names the YTID and the names tried), a row with an unknown label
mid (the mid is named), a malformed row, a second row for the same YTID, a second file
matching a row, an audio file no row matches (unlabelled) and a file of another audio format.
Other files (the CSVs, READMEs) are not inputs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from preprocessing.decode.audio import SUPPORTED_EXTENSIONS
from preprocessing.engine.records import AudioClip, Rejected, ScanResult

SPLITS = ("train", "val")
LABELS_FILE = "class_labels_indices.csv"
SEGMENT_FILES = {  # in the order rows are matched to files
    "balanced_train_segments.csv": "train",
    "unbalanced_train_segments.csv": "train",
    "eval_segments.csv": "val",
}
UNSUPPORTED_AUDIO = (".ogg", ".opus", ".m4a", ".aac", ".webm", ".aif", ".aiff", ".wma")


@dataclass(frozen=True)
class Segment:
    """One row of a segment CSV."""

    ytid: str
    start: str
    end: str
    labels: tuple[str, ...]
    line: int  # 1-based line number in the CSV


def parse_class_labels(text: str) -> tuple[dict[str, int], dict[str, str]]:
    """``class_labels_indices.csv`` -> (mid -> index, mid -> display name)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"index", "mid", "display_name"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(
            f"{LABELS_FILE} lacks columns {sorted(missing)}; expected index,mid,display_name"
        )
    label_map: dict[str, int] = {}
    names: dict[str, str] = {}
    for row in reader:
        mid = (row["mid"] or "").strip()
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise ValueError(f"{LABELS_FILE}: bad index {row['index']!r} for {mid!r}") from None
        if mid in label_map:
            raise ValueError(f"{LABELS_FILE}: mid {mid!r} listed twice")
        label_map[mid] = index
        names[mid] = (row["display_name"] or "").strip()
    if sorted(label_map.values()) != list(range(len(label_map))):
        raise ValueError(f"{LABELS_FILE}: indices must be 0..{len(label_map) - 1}, each once")
    if not label_map:
        raise ValueError(f"{LABELS_FILE} lists no classes")
    return dict(sorted(label_map.items(), key=lambda kv: kv[1])), names


def parse_segments(text: str) -> tuple[list[Segment], list[tuple[int, str]]]:
    """A segment CSV -> (rows, [(line, what is wrong)] for malformed rows)."""
    segments: list[Segment] = []
    bad: list[tuple[int, str]] = []
    lines = text.splitlines()
    for lineno, fields in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if len(fields) < 4:
            bad.append((lineno, f"malformed row {lines[lineno - 1]!r}: expected 4 fields"))
            continue
        ytid, start, end = (f.strip() for f in fields[:3])
        # Quoted labels arrive as one field; unquoted ones as several: accept both.
        labels = tuple(m.strip() for f in fields[3:] for m in f.split(",") if m.strip())
        try:
            float(start), float(end)
        except ValueError:
            bad.append((lineno, f"malformed row {lines[lineno - 1]!r}: bad start/end seconds"))
            continue
        if not ytid or not labels:
            bad.append((lineno, f"malformed row {lines[lineno - 1]!r}: no YTID or no labels"))
            continue
        segments.append(Segment(ytid, start, end, labels, lineno))
    return segments, bad


def _time_forms(value: str) -> list[str]:
    seconds = float(value)
    forms = [value, f"{seconds:.3f}"]
    if seconds.is_integer():
        forms.append(str(int(seconds)))
    return forms


def candidate_stems(seg: Segment) -> list[str]:
    """File stems that hold ``seg``, in order of preference."""
    stems = [seg.ytid, f"Y{seg.ytid}"]
    for start, end in zip(_time_forms(seg.start), _time_forms(seg.end), strict=False):
        stems += [f"{seg.ytid}_{start}_{end}", f"Y{seg.ytid}_{start}_{end}"]
    return list(dict.fromkeys(stems))


def _find_one(root: Path, name: str) -> Path | None:
    found = sorted(root.rglob(name))
    if len(found) > 1:
        where = [p.relative_to(root).as_posix() for p in found]
        raise ValueError(f"{name} found {len(found)} times under {str(root)!r}: {where}")
    return found[0] if found else None


def scan_audioset(root: Path) -> ScanResult:
    """Match the segment CSVs' rows to the audio files under ``root``; reject the rest."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    labels_path = _find_one(root, LABELS_FILE)
    csvs = {name: _find_one(root, name) for name in SEGMENT_FILES}
    if labels_path is None or not any(csvs.values()):
        raise ValueError(
            f"input directory {str(root)!r} lacks {LABELS_FILE} or every segment list "
            f"({', '.join(SEGMENT_FILES)}): expected the AudioSet layout"
        )
    label_map, _ = parse_class_labels(labels_path.read_text(encoding="utf-8"))

    rejected: list[Rejected] = []
    by_stem: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        source = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        if suffix in SUPPORTED_EXTENSIONS:
            by_stem.setdefault(path.stem, []).append(source)
        elif suffix in UNSUPPORTED_AUDIO:
            rejected.append(
                Rejected(
                    source,
                    "scan",
                    f"unsupported extension {path.suffix!r}; expected one of "
                    f"{SUPPORTED_EXTENSIONS}",
                )
            )

    items: list[AudioClip] = []
    claimed: set[str] = set()
    first_row: dict[str, str] = {}  # ytid -> "<csv>:<line>" of the row that labels it
    for name, csv_path in csvs.items():
        if csv_path is None:
            continue
        csv_rel = csv_path.relative_to(root).as_posix()
        segments, bad = parse_segments(csv_path.read_text(encoding="utf-8"))
        rejected += [Rejected(f"{csv_rel}:{line}", "scan", why) for line, why in bad]
        for seg in segments:
            row = f"{csv_rel}:{seg.line}"
            if seg.ytid in first_row:
                rejected.append(
                    Rejected(
                        row,
                        "scan",
                        f"duplicate YTID {seg.ytid!r}: already at {first_row[seg.ytid]}",
                    )
                )
                continue
            first_row[seg.ytid] = row
            stems = candidate_stems(seg)
            matches = [s for stem in stems for s in by_stem.get(stem, []) if s not in claimed]
            if not matches:
                why = (
                    f"no audio file for YTID {seg.ytid!r}: tried the names {stems} with "
                    f"extensions {SUPPORTED_EXTENSIONS} anywhere under the input root"
                )
                rejected.append(Rejected(row, "scan", why))
                continue
            source, others = matches[0], matches[1:]
            claimed.update(matches)
            rejected += [
                Rejected(o, "scan", f"duplicate: YTID {seg.ytid!r} ({row}) is read from {source}")
                for o in others
            ]
            unknown = [m for m in seg.labels if m not in label_map]
            if unknown:
                rejected.append(
                    Rejected(
                        source,
                        "scan",
                        f"unknown label mid(s) {unknown} for YTID {seg.ytid!r} ({row}): not in "
                        f"{LABELS_FILE}",
                    )
                )
                continue
            indices = tuple(sorted({label_map[m] for m in seg.labels}))
            items.append(AudioClip(source, SEGMENT_FILES[name], seg.ytid, indices))

    present = [n for n, p in csvs.items() if p is not None]
    for stem, sources in sorted(by_stem.items()):
        rejected += [
            Rejected(
                s,
                "scan",
                f"unlabelled: no row of {present} matches the file name stem {stem!r}",
            )
            for s in sources
            if s not in claimed
        ]
    rejected.sort(key=lambda r: r.source)
    return ScanResult(items=items, rejected=rejected, label_map=label_map)
