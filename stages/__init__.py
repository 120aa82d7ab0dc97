"""The jobs: each module exposes `run(config) -> result`, called by the CLI and the tests."""


class StageError(RuntimeError):
    """A stage cannot proceed; the message says what, where and what to do. The CLI prints it
    as one line and exits 1."""


class NotImplementedStage(StageError):
    """The stage has not been built yet (never a fake success)."""
