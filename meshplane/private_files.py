"""Files that hold a credential (an admin token, a bootstrap with its node token): mode 0600.

The mode is set when the file is created and again after writing, so neither a new file nor
one that existed with a wider mode is readable by others at any moment.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (created or truncated), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
