"""The jobs: each module exposes `run(config) -> result`, called by the CLI and the tests."""

from pipeline.errors import StageError

__all__ = ["StageError"]
