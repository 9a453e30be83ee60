"""Faults on demand (contract §6): parsed from `--faults throttle=0.2,fail-once=X,drop-watch,pending=R,
oom-download` or set through POST /_sandbox/faults, consulted by the AWS front, the API servers, the controller
simulation and the fake tools."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_HELP = (
    "throttle=<share 0..1> (AWS calls answered with a throttling error), "
    "fail-once=<target> (eksctl | eksctl-delete | helm | an AWS operation such as CreateFileSystem | "
    "kube:<verb>:<resource> such as kube:create:jobs), drop-watch[=N] (the next N watch streams break), "
    "pending=<reason> (GPU pods stay Pending with this reason until cleared), oom-download (the next "
    "model-download Job is OOM-killed), hold=<point> (a fake tool waits at that point until release=<point>; "
    "points: eksctl-stack, after eksctl's cluster stack exists and before its EKS cluster is created)"
)
HOLD_POINTS = ("eksctl-stack",)


class FaultError(ValueError):
    pass


@dataclass
class Faults:
    throttle: float = 0.0
    fail_once: list[str] = field(default_factory=list)
    drop_watch: int = 0
    pending: str | None = None
    oom_download: bool = False
    holds: list[str] = field(default_factory=list)
    seed: int = 7
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(7), repr=False, compare=False)
    fired: list[str] = field(default_factory=list)

    # -------------------------------------------------------------------------------- parse / serialise

    @classmethod
    def parse(cls, text: str | None) -> Faults:
        f = cls()
        f.update_from_text(text)
        return f

    def update_from_text(self, text: str | None) -> None:
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            key, _, value = item.partition("=")
            key = key.strip().lower()
            value = value.strip()
            self.update({key: value if _ else True})

    def update(self, data: dict[str, Any]) -> None:
        with self._lock:
            for key, value in data.items():
                k = key.replace("_", "-").lower()
                if k == "throttle":
                    try:
                        share = 0.2 if value is True or value is None else float(value)
                    except (TypeError, ValueError):
                        raise FaultError(f"throttle: {value!r} is not a number; give a share such as 0.2") from None
                    if not 0 <= share <= 1:
                        raise FaultError(f"throttle: {share} is outside 0..1; give a share such as 0.2")
                    self.throttle = share
                elif k == "fail-once":
                    if value in (True, None, ""):
                        raise FaultError("fail-once needs a target, e.g. fail-once=helm or fail-once=CreateFileSystem")
                    targets = value if isinstance(value, list) else [value]
                    self.fail_once.extend(str(t) for t in targets)
                elif k == "drop-watch":
                    try:
                        self.drop_watch = 1 if value is True else int(value or 0)
                    except (TypeError, ValueError):
                        raise FaultError(f"drop-watch: {value!r} is not a count") from None
                elif k == "pending":
                    self.pending = None if value in (None, False, "") else (
                        "insufficient capacity" if value is True else str(value))
                elif k == "oom-download":
                    self.oom_download = value not in (False, None, "false", "0")
                elif k in ("hold", "release"):
                    points = value if isinstance(value, list) else [] if value in (True, None) else [value]
                    if not points:
                        raise FaultError(f"{k} needs a point; points: {', '.join(HOLD_POINTS)}")
                    for raw in points:
                        point = str(raw).strip().lower()
                        if point not in HOLD_POINTS:
                            raise FaultError(f"{k}: {raw!r} is not a hold point; points: {', '.join(HOLD_POINTS)}")
                        if k == "hold" and point not in self.holds:
                            self.holds.append(point)
                        elif k == "release" and point in self.holds:
                            self.holds.remove(point)
                elif k == "seed":
                    self.seed = int(value)
                    self._rng.seed(self.seed)
                elif k == "clear":
                    self._clear()
                else:
                    raise FaultError(f"unknown fault {key!r}; known faults: {FAULT_HELP}")

    def _clear(self) -> None:
        self.throttle = 0.0
        self.fail_once = []
        self.drop_watch = 0
        self.pending = None
        self.oom_download = False
        self.holds = []

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"throttle": self.throttle, "fail-once": list(self.fail_once), "drop-watch": self.drop_watch,
                    "pending": self.pending, "oom-download": self.oom_download, "hold": list(self.holds),
                    "fired": list(self.fired[-50:])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        f = cls()
        f.throttle = float(data.get("throttle") or 0)
        f.fail_once = list(data.get("fail-once") or [])
        f.drop_watch = int(data.get("drop-watch") or 0)
        f.pending = data.get("pending")
        f.oom_download = bool(data.get("oom-download"))
        f.holds = [str(p) for p in data.get("hold") or []]
        return f

    # -------------------------------------------------------------------------------- consulted by parts

    def should_throttle(self) -> bool:
        with self._lock:
            hit = self.throttle > 0 and self._rng.random() < self.throttle
            if hit:
                self.fired.append("throttle")
            return hit

    def take_fail_once(self, *targets: str) -> str | None:
        """Consume and return the first armed fail-once target among `targets` (case-insensitive)."""
        wanted = {t.lower() for t in targets if t}
        with self._lock:
            for armed in self.fail_once:
                if armed.lower() in wanted:
                    self.fail_once.remove(armed)
                    self.fired.append(f"fail-once={armed}")
                    return armed
        return None

    def take_drop_watch(self) -> bool:
        with self._lock:
            if self.drop_watch > 0:
                self.drop_watch -= 1
                self.fired.append("drop-watch")
                return True
            return False

    def take_kube_failure(self, verb: str, plural: str) -> bool:
        return self.take_fail_once(f"kube:{verb}:{plural}") is not None

    def held(self, point: str) -> bool:
        """True while `point` is held (the first time a tool waits there counts as fired)."""
        with self._lock:
            if point not in self.holds:
                return False
            if f"hold={point}" not in self.fired:
                self.fired.append(f"hold={point}")
            return True

    def take_oom_download(self) -> bool:
        with self._lock:
            if self.oom_download:
                self.oom_download = False
                self.fired.append("oom-download")
                return True
            return False
