"""Container logs of the sandbox's pods: written by the controller simulation, read (and followed) through
the API server's pods/log endpoint. Lines are kept in memory and appended to files, so they survive a
service restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class ContainerLog:
    lines: list[tuple[datetime, str]] = field(default_factory=list)
    closed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class LogHub:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._logs: dict[tuple[str, str, str], ContainerLog] = {}

    def _file(self, ns: str, pod: str, container: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{ns}_{pod}_{container}.log"

    def get(self, ns: str, pod: str, container: str) -> ContainerLog:
        key = (ns, pod, container)
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = ContainerLog()
            path = self._file(ns, pod, container)
            if path is not None and path.exists():
                for raw in path.read_text(encoding="utf-8").splitlines():
                    stamp, _, text = raw.partition(" ")
                    try:
                        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                    except ValueError:
                        when, text = datetime.now(UTC), raw
                    log.lines.append((when, text))
        return log

    def has(self, ns: str, pod: str, container: str) -> bool:
        path = self._file(ns, pod, container)
        return (ns, pod, container) in self._logs or (path is not None and path.exists())

    def write(self, ns: str, pod: str, container: str, *texts: str) -> None:
        log = self.get(ns, pod, container)
        now = datetime.now(UTC)
        new = [(now, t) for text in texts for t in text.split("\n")]
        log.lines.extend(new)
        path = self._file(ns, pod, container)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                for when, text in new:
                    f.write(f"{when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {text}\n")
        log.notify()

    def close(self, ns: str, pod: str, container: str) -> None:
        log = self.get(ns, pod, container)
        log.closed = True
        log.notify()

    def drop_pod(self, ns: str, pod: str) -> None:
        for key in [k for k in self._logs if k[0] == ns and k[1] == pod]:
            log = self._logs.pop(key)
            log.closed = True
            log.notify()
        if self.directory is not None and self.directory.is_dir():
            for path in self.directory.glob(f"{ns}_{pod}_*.log"):
                path.unlink(missing_ok=True)
