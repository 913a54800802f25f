"""``perceiver-pipeline``: the command table (``main``) and the handlers of its commands."""

from pipelines.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
