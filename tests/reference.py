"""Where the upstream reference lives: `../shared/reference` beside the project (CI's layout). A clone made
elsewhere (a temporary directory) finds it beside the repository it was cloned from, or through
DYNAMO_WIZARD_SHARED_DIR. It is read in place, never copied."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "DYNAMO_WIZARD_SHARED_DIR"


def shared_dir() -> Path:
    """The `shared` directory (its `reference/` holds the schemas and facts)."""
    explicit = os.environ.get(SHARED_ENV)
    if explicit:
        return Path(explicit)
    beside = ROOT.parent / "shared"
    if (beside / "reference").is_dir():
        return beside
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir() and (Path(origin).resolve().parent / "shared" / "reference").is_dir():
        return Path(origin).resolve().parent / "shared"
    return beside


SHARED = shared_dir() / "reference"
