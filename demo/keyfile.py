"""Where the demo keeps its core-banking API key, so the simulator can use it.

Only the demo does this: a real bank's key is shown once and kept in its own vault.
"""

import os
from pathlib import Path

from django.conf import settings


def default_path() -> Path:
    """`var/demo/core-api-key`, or under `DEMO_STATE_DIR` when that is set."""
    return Path(os.environ.get("DEMO_STATE_DIR") or settings.VAR_DIR) / "demo" / "core-api-key"


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


def write(path: Path, secret: str) -> None:
    """Write `secret` readable by this user only, replacing any older key at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    os.replace(partial, path)
