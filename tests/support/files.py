"""File-permission checks shared by the data-file tests."""

from __future__ import annotations

import stat
from pathlib import Path


def loose_modes(root: Path) -> list[str]:
    """Every file not 0600 and every directory not 0700 under `root` (and `root` itself): what
    a user other than the owner could read or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode & ~wanted:
            found.append(f"{path.relative_to(root.parent)}: {mode:o}")
    return found
