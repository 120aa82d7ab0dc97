"""The error family: everything a user can fix is a `StageError` whose message says what, where
and what to do. The CLI prints it as one line and exits 1. Building blocks raise these too, so the
class lives here and `stages` re-exports it (`pipeline/` never imports `stages/`)."""


class StageError(RuntimeError):
    """A stage cannot proceed; the message says what, where and what to do."""


class CacheError(StageError):
    """The cache is missing, unreadable, stale or busy; the message says what to do."""


class DamagedTrackletError(CacheError):
    """One tracklet's group in an otherwise readable cache cannot be read (damaged bytes)."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


class FileSystemError(StageError):
    """A file could not be written or read: full disk, read-only file system, no permission."""


class DatasetLayoutError(StageError):
    """The root (or manifest) does not have the named dataset's layout; the message shows the
    expected tree."""


class FrameReadError(StageError):
    """No frame of a tracklet (or its video) could be decoded."""
