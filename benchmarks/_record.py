"""Write a benchmark's table into docs/benchmarks.md between markers named after it."""

from __future__ import annotations

import platform
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Figures written by the scripts in `benchmarks/`; each section is replaced when its script\n"
    "runs again. Ratios are against a baseline measured in the same run, on the same machine.\n"
)


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def record(name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"{start}\n{body.rstrip()}\n\n_Recorded {stamp} on {machine()}._\n{end}"
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    return DOC
