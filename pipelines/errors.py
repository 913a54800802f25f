"""Errors the CLI reports as one line and a non-zero exit, without a traceback.

Each names what failed and what to do (the file, option, service or variable); anything
else that escapes a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A failure of something outside the code (a cluster, a registry, a step) to report."""
