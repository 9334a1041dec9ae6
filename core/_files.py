"""File helpers without heavy imports (the report, masks and the app's exports use them)."""
from __future__ import annotations

import os

__all__ = ["usual_file_mode"]


def usual_file_mode(path) -> None:
    """Give a file from ``tempfile.mkstemp`` (mode 0600) the mode a plain ``open`` would
    (0666 less the umask), so results written atomically can be shared like any file."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
