"""Secrets never reach a log, a file, an error message or the screen.

Every secret the process learns (the HF token) is registered here; `redact` replaces each occurrence in
any text before it is written or shown. Tokens that look like Hugging Face tokens are masked even when
they were never registered.
"""

from __future__ import annotations

import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
HF_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{20,}")
MASK = "****"


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return HF_TOKEN_RE.sub(MASK, text)


def clear_secrets() -> None:
    """For tests only."""
    with _lock:
        _secrets.clear()
