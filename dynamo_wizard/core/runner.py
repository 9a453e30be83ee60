"""Runs a step graph: explicit dependencies, independent steps in parallel, events out, cooperative cancel.

A `Step` is an id, a title, the ids it depends on, a timeout and an action `(StepContext) -> StepResult`.
The `Runner` starts every step whose dependencies are done (or skipped: already present) on a bounded
thread pool, and emits events (`core.events`) to its listeners, one at a time (listeners need not be
thread-safe; the TUI posts them as messages).

- A failed step blocks only its dependants (status "blocked"); independent branches carry on. An
  `optional` step's failure blocks nothing (a warm-up, a check).
- Cancel is cooperative: `Runner.cancel()` sets a token that steps check at safe points
  (`ctx.check()`, `ctx.wait_until`, `ctx.sleep`, subprocess streaming). Steps not started are marked
  "cancelled". A second `cancel()` (or `cancel(force=True)`) also stops what is not safe to stop
  (a running eksctl); the first one lets it reach its own end.
- A step that fails with a transient error (`core.errors.is_transient`: throttling, a 5xx, a dropped
  connection) is tried again, up to `Step.retries` times, after `retry_delays` seconds (its actions are
  idempotent: a second attempt finds and adopts what the first one made). The step's log says so. Only
  when the last attempt fails too (or the next wait would pass the deadline) does the step fail.
- Every step has a timeout. At the deadline its own token trips (as a forced cancel, so a subprocess is
  stopped) and the step fails with a message saying what timed out and what to do; a step that does not
  return within a grace period after that is abandoned (reported failed) so the run never hangs.
- Output lines are redacted (`core.redact`) before they reach a listener and written to one log file per
  step under `core.paths.logs_dir(deployment)`; `StepStarted.log_path` says where.

Nothing here knows AWS or Kubernetes: steps talk to the protocols in `core.protocols`.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from .errors import Cancelled, StepError, WizardError, is_transient
from .events import (
    Event,
    Listener,
    ResourceRecorded,
    RunFinished,
    RunStarted,
    StepDescription,
    StepFinished,
    StepOutput,
    StepStarted,
    StepStatus,
)
from .ledger import Ledger
from .paths import logs_dir
from .redact import redact

T = TypeVar("T")

DEFAULT_TIMEOUT = 15 * 60.0
ABANDON_GRACE = 30.0  # seconds a step gets to return after its deadline before it is given up on
RETRY_DELAYS = (2.0, 6.0)  # seconds before the 2nd and 3rd attempt of a step that failed transiently
FINISHED = ("done", "skipped", "failed", "cancelled", "blocked")


# --------------------------------------------------------------------------------------------------
# Cancellation


class CancelToken:
    """A cancel flag that can be waited on. `child()` tokens trip when their parent does (not the reverse).

    `cancelled`: stop at the next safe point. `forced`: stop now, even what is unsafe to interrupt.
    `reason` is "cancel" (the user) or "timeout" (a step's deadline).
    """

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._forced = False
        self.reason: str | None = None
        self._children: list[CancelToken] = []
        self._lock = threading.Lock()
        if parent is not None:
            parent._adopt(self)

    def _adopt(self, child: CancelToken) -> None:
        with self._lock:
            self._children.append(child)
            cancelled, forced, reason = self._event.is_set(), self._forced, self.reason
        if cancelled:
            child.cancel(force=forced, reason=reason or "cancel")

    def child(self) -> CancelToken:
        return CancelToken(self)

    def cancel(self, force: bool = False, reason: str = "cancel") -> None:
        with self._lock:
            if self.reason is None or (force and not self._forced):
                self.reason = reason
            if force:
                self._forced = True
            children = list(self._children)
            self._event.set()
        for c in children:
            c.cancel(force=force, reason=reason)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def forced(self) -> bool:
        return self._forced

    def wait(self, timeout: float | None) -> bool:
        """Wait up to `timeout` seconds; True when cancelled (then it returns at once)."""
        return self._event.wait(timeout)


class StepTimeout(StepError):
    """A step ran past its deadline."""


# --------------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class StepResult:
    status: Literal["done", "skipped"] = "done"
    summary: str = ""


def done(summary: str = "") -> StepResult:
    return StepResult("done", summary)


def skipped(summary: str = "") -> StepResult:
    """The step found everything it would create already present, and adopted it."""
    return StepResult("skipped", summary)


StepAction = Callable[["StepContext"], "StepResult | None"]


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    action: StepAction
    deps: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    optional: bool = False
    timeout_fix: str = "check the step's log, then run the same command again to resume"
    description: str = ""
    retries: int = 2  # further attempts after a transient failure (0: fail at once)


@dataclass(frozen=True)
class StepInfo:
    """A step without its action: what the benchmark's duration model and the UI need."""

    id: str
    title: str
    deps: tuple[str, ...]
    timeout: float
    optional: bool


class GraphError(ValueError):
    pass


def check_graph(steps: Sequence[Step]) -> None:
    """Unique ids, known dependencies, no cycles; raises GraphError."""
    ids = [s.id for s in steps]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise GraphError(f"step ids used twice: {', '.join(dupes)}")
    known = set(ids)
    for s in steps:
        missing = [d for d in s.deps if d not in known]
        if missing:
            raise GraphError(f"step {s.id!r} depends on unknown steps: {', '.join(missing)}")
    topological_order(steps)


def topological_order(steps: Sequence[Step] | Sequence[StepInfo]) -> list[str]:
    """Ids in an order where every step follows its dependencies (stable: graph order breaks ties)."""
    deps = {s.id: set(s.deps) for s in steps}
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(deps):
        ready = [i for i in deps if i not in placed and deps[i] <= placed]
        if not ready:
            cycle = sorted(i for i in deps if i not in placed)
            raise GraphError(f"the steps depend on each other in a cycle: {', '.join(cycle)}")
        for i in ready:
            order.append(i)
            placed.add(i)
    return order


def critical_path(steps: Sequence[StepInfo] | Sequence[Step], durations: dict[str, float]) -> float:
    """Earliest finish of the whole graph with unlimited parallelism (steps missing from `durations` take 0)."""
    by_id = {s.id: s for s in steps}
    finish: dict[str, float] = {}
    for sid in topological_order(steps):
        start = max((finish[d] for d in by_id[sid].deps), default=0.0)
        finish[sid] = start + durations.get(sid, 0.0)
    return max(finish.values(), default=0.0)


# --------------------------------------------------------------------------------------------------
# The context a step runs with


class RunState:
    """Values steps hand to their dependants (cluster facts, the Kubernetes client, the file system id).

    A step writes only its own keys and reads only what its dependencies wrote, so the graph's order is
    the synchronisation; the lock only keeps the dict itself consistent.
    """

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(initial or {})
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            if key not in self._values:
                raise KeyError(f"no {key!r} in the run state (a dependency did not provide it)")
            return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self._values[key] = value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._values


class StepContext:
    """What a running step may use: logging, the ledger, cancel-aware waiting, the shared run state."""

    def __init__(self, runner: Runner, step: Step, token: CancelToken, deadline: float, log_path: Path) -> None:
        self._runner = runner
        self.step = step
        self.step_id = step.id
        self.cancel = token
        self.deadline = deadline
        self.log_path = log_path
        self.state = runner.state
        self.deployment = runner.deployment
        self.ledger = runner.ledger
        self.clock = runner.clock
        self.last_lines: list[str] = []

    # -- output ------------------------------------------------------------------------------------

    def log(self, line: str) -> None:
        """One line of output: redacted, written to the step's log file, sent to the listeners."""
        for part in str(line).splitlines() or [""]:
            clean = redact(part.rstrip("\r"))
            self.last_lines.append(clean)
            if len(self.last_lines) > 50:
                del self.last_lines[:-50]
            self._runner._write_log(self.log_path, clean)
            self._runner._emit(StepOutput(self.step_id, clean))

    def emit(self, event: Event) -> None:
        self._runner._emit(event)

    # -- the ledger --------------------------------------------------------------------------------

    def record(self, action: str, kind: str, name: str, resource_id: str | None = None, **extra: Any) -> None:
        """Write a ledger line (fsync'd) and tell the listeners."""
        if self.ledger is not None:
            self.ledger.record(action, kind, name, resource_id, self.step_id, **extra)
        self._runner._emit(ResourceRecorded(self.step_id, action, kind, name, resource_id))

    def intent(self, kind: str, name: str, **extra: Any) -> None:
        self.record("intent", kind, name, None, **extra)

    def created(self, kind: str, name: str, resource_id: str | None = None, **extra: Any) -> None:
        self.record("created", kind, name, resource_id, **extra)

    def adopted(self, kind: str, name: str, resource_id: str | None = None, **extra: Any) -> None:
        self.record("adopted", kind, name, resource_id, **extra)

    def deleted(self, kind: str, name: str, resource_id: str | None = None) -> None:
        self.record("deleted", kind, name, resource_id)

    # -- time, cancel and waiting ------------------------------------------------------------------

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def check(self) -> None:
        """A safe point: raise if the run was cancelled or the step ran out of time."""
        if self.cancel.cancelled:
            if self.cancel.reason == "timeout":
                raise self._timeout_error()
            raise Cancelled()
        if self.clock() > self.deadline:
            self.cancel.cancel(force=True, reason="timeout")
            raise self._timeout_error()

    def _timeout_error(self, what: str | None = None) -> StepTimeout:
        limit = format_duration(self.step.timeout)
        subject = what or self.step.title
        return StepTimeout(f"{subject} did not finish within {limit} (the step's timeout)", self.step.timeout_fix)

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, returning early (with an exception) on cancel or the step's deadline."""
        self.check()
        self.cancel.wait(max(0.0, min(seconds, self.remaining())))
        self.check()

    def wait_until(self, probe: Callable[[], T | None], what: str, *, interval: float = 2.0,
                   timeout: float | None = None, max_interval: float | None = None,
                   fix: str | None = None) -> T:
        """Call `probe` until it returns something truthy (returned), checking cancel and time in between.

        `timeout` (seconds from now) is an inner limit inside the step's own; its error names `what`.
        The interval grows by half each round up to `max_interval` (default: the interval).
        """
        limit = self.clock() + timeout if timeout is not None else None
        pause = interval
        cap = max_interval or interval
        while True:
            self.check()
            value = probe()
            if value:
                return value
            now = self.clock()
            if limit is not None and now >= limit:
                raise StepTimeout(f"timed out after {format_duration(timeout or 0)} waiting for {what}",
                                  fix or self.step.timeout_fix)
            wait_for = pause if limit is None else min(pause, max(0.0, limit - now))
            self.sleep(wait_for)
            pause = min(cap, pause * 1.5)

    def background(self, name: str, target: Callable[[CancelToken], None]) -> threading.Thread:
        """Run `target(token)` in a daemon thread that stops (token set) when the whole run ends."""
        return self._runner._start_background(name, target)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


# --------------------------------------------------------------------------------------------------
# The runner


@dataclass
class StepReport:
    step_id: str
    title: str
    status: StepStatus = "pending"
    elapsed: float = 0.0
    error: str | None = None
    fix: str | None = None
    summary: str = ""
    log_path: Path | None = None


@dataclass
class RunReport:
    ok: bool
    cancelled: bool
    steps: dict[str, StepReport] = field(default_factory=dict)
    elapsed: float = 0.0

    def status(self, step_id: str) -> StepStatus:
        return self.steps[step_id].status

    def failed(self) -> list[StepReport]:
        return [s for s in self.steps.values() if s.status == "failed"]


class Runner:
    """Runs one step graph once. Build a new Runner to resume (steps find and adopt what exists)."""

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        deployment: str,
        ledger: Ledger | None = None,
        listeners: Iterable[Listener] = (),
        max_workers: int = 4,
        log_dir: Path | None = None,
        state: RunState | None = None,
        clock: Callable[[], float] = time.monotonic,
        abandon_grace: float = ABANDON_GRACE,
        final_check: Callable[[RunReport], str] | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        check_graph(steps)
        self._steps = list(steps)
        self._by_id = {s.id: s for s in self._steps}
        self.deployment = deployment
        self.ledger = ledger
        self._listeners: list[Listener] = list(listeners)
        self.max_workers = max(1, max_workers)
        self._log_dir = log_dir
        self.state = state or RunState()
        self.clock = clock
        self.abandon_grace = abandon_grace
        self._final_check = final_check
        self.retry_delays = tuple(retry_delays)
        self._token = CancelToken()
        self._background_token = CancelToken()
        self._emit_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._cancel_count = 0
        self._ran = False
        self.report: RunReport | None = None
        self._threads: list[threading.Thread] = []

    # -- what the UI asks before running -------------------------------------------------------------

    def steps(self) -> list[Step]:
        return list(self._steps)

    def step_infos(self) -> list[StepInfo]:
        return [StepInfo(s.id, s.title, s.deps, s.timeout, s.optional) for s in self._steps]

    @property
    def log_dir(self) -> Path:
        if self._log_dir is None:
            self._log_dir = logs_dir(self.deployment)
        return self._log_dir

    def log_path(self, step_id: str) -> Path:
        return self.log_dir / f"{step_id}.log"

    def add_listener(self, listener: Listener) -> None:
        with self._emit_lock:
            self._listeners.append(listener)

    # -- cancel --------------------------------------------------------------------------------------

    def cancel(self, force: bool = False) -> None:
        """Stop at the next safe point; a second call (or force=True) also stops unsafe work (eksctl)."""
        self._cancel_count += 1
        self._token.cancel(force=force or self._cancel_count > 1, reason="cancel")

    @property
    def cancelled(self) -> bool:
        return self._token.cancelled

    # -- events and logs -----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        with self._emit_lock:
            listeners = list(self._listeners)
            for listener in listeners:
                try:
                    listener(event)
                except Exception:  # noqa: BLE001 - a broken listener must not break the run
                    pass

    def _write_log(self, path: Path, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._log_lock:
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(f"{stamp} {line}\n")
            except OSError:
                pass  # a full disk must not stop the run; the line still reached the listeners

    def _start_background(self, name: str, target: Callable[[CancelToken], None]) -> threading.Thread:
        token = self._background_token.child()

        def run() -> None:
            try:
                target(token)
            except Exception:  # noqa: BLE001 - a background helper (a watch) never fails the run
                pass

        thread = threading.Thread(target=run, name=f"dw-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    # -- running -------------------------------------------------------------------------------------

    def run(self) -> RunReport:
        """Run the graph to the end (blocking). Ctrl-C in the calling thread acts as cancel()."""
        if self._ran:
            raise RuntimeError("a Runner runs once; build a new one to resume")
        self._ran = True
        started = self.clock()
        reports = {s.id: StepReport(s.id, s.title, log_path=self.log_path(s.id)) for s in self._steps}
        self._emit(RunStarted(tuple(StepDescription(s.id, s.title, s.deps, s.timeout, s.optional)
                                    for s in self._steps), str(self.log_dir)))
        running: dict[Future[StepResult | None], tuple[Step, StepContext, float]] = {}
        abandoned: set[str] = set()
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=f"dw-{self.deployment}")
        try:
            while True:
                try:
                    if not self._schedule(reports, running, pool):
                        break
                    self._wait_some(reports, running, abandoned)
                except KeyboardInterrupt:
                    self.cancel()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            self._background_token.cancel(force=True, reason="cancel")
        cancelled = self._token.cancelled and any(r.status == "cancelled" for r in reports.values())
        ok = all(r.status in ("done", "skipped") or (r.status == "failed" and self._by_id[r.step_id].optional)
                 for r in reports.values())
        report = RunReport(ok=ok and not cancelled, cancelled=cancelled, steps=reports,
                           elapsed=self.clock() - started)
        summary = self._final_check(report) if self._final_check else _summary(report)
        self.report = report
        self._emit(RunFinished(ok=report.ok, cancelled=cancelled, summary=summary))
        return report

    def _schedule(self, reports: dict[str, StepReport], running: dict[Future[Any], Any],
                  pool: ThreadPoolExecutor) -> bool:
        """Settle blocked/cancelled steps, start ready ones; False when nothing is left to do."""
        changed = True
        while changed:
            changed = False
            for step in self._steps:
                rep = reports[step.id]
                if rep.status != "pending":
                    continue
                bad = [d for d in step.deps if reports[d].status in ("blocked", "cancelled")
                       or (reports[d].status == "failed" and not self._by_id[d].optional)]
                if bad:
                    cause = bad[0]
                    why = reports[cause].status
                    rep.status = "cancelled" if why == "cancelled" else "blocked"
                    rep.error = (f"not started: {self._by_id[cause].title} was cancelled" if why == "cancelled"
                                 else f"not started: it needs {self._by_id[cause].title}, which "
                                      f"{'failed' if why == 'failed' else 'could not run'}")
                    self._emit(StepFinished(step.id, rep.status, 0.0, rep.error, None))
                    changed = True
        if self._token.cancelled:
            for step in self._steps:
                rep = reports[step.id]
                if rep.status == "pending":
                    rep.status = "cancelled"
                    rep.error = "not started: the run was stopped"
                    self._emit(StepFinished(step.id, "cancelled", 0.0, rep.error, None))
        for step in self._steps:
            if len(running) >= self.max_workers:
                break
            rep = reports[step.id]
            if rep.status != "pending":
                continue
            if all(reports[d].status in ("done", "skipped") or
                   (reports[d].status == "failed" and self._by_id[d].optional) for d in step.deps):
                self._start(step, rep, running, pool)
        return bool(running) or any(r.status == "pending" for r in reports.values())

    def _start(self, step: Step, rep: StepReport, running: dict[Future[Any], Any], pool: ThreadPoolExecutor) -> None:
        token = self._token.child()
        now = self.clock()
        log_path = self.log_path(step.id)
        ctx = StepContext(self, step, token, now + step.timeout, log_path)
        rep.status = "running"
        self._write_log(log_path, f"--- {step.title} (started) ---")
        self._emit(StepStarted(step.id, step.title, log_path=str(log_path)))
        future = pool.submit(_call, step, ctx)
        running[future] = (step, ctx, now)

    def _wait_some(self, reports: dict[str, StepReport], running: dict[Future[Any], Any],
                   abandoned: set[str]) -> None:
        if not running:
            return
        now = self.clock()
        nearest = min(ctx.deadline + (self.abandon_grace if ctx.cancel.reason == "timeout" else 0.0)
                      for _, ctx, _ in running.values())
        finished, _ = wait(list(running), timeout=max(0.05, min(nearest - now, 1.0)), return_when=FIRST_COMPLETED)
        for future in finished:
            step, ctx, started = running.pop(future)
            if step.id in abandoned:
                continue
            self._finish(step, ctx, reports[step.id], future, self.clock() - started)
        now = self.clock()
        for future, (step, ctx, started) in list(running.items()):
            if now > ctx.deadline and not ctx.cancel.cancelled:
                # Past its deadline: trip the step's token (forced: stop its subprocess too).
                ctx.cancel.cancel(force=True, reason="timeout")
            elif now > ctx.deadline + self.abandon_grace:
                running.pop(future)
                abandoned.add(step.id)
                err = ctx._timeout_error()
                rep = reports[step.id]
                rep.status, rep.error, rep.fix, rep.elapsed = "failed", err.message, err.fix, now - started
                ctx.log(f"failed: {err.message}")
                self._emit(StepFinished(step.id, "failed", rep.elapsed, rep.error, rep.fix))

    def _finish(self, step: Step, ctx: StepContext, rep: StepReport, future: Future[Any], elapsed: float) -> None:
        rep.elapsed = elapsed
        err = future.exception()
        if err is None:
            result = future.result() or StepResult()
            rep.status = result.status
            rep.summary = redact(result.summary)
            if rep.summary:
                ctx.log(rep.summary)
            ctx.log(f"{'already present' if rep.status == 'skipped' else 'done'} in {format_duration(elapsed)}")
        elif isinstance(err, Cancelled) or (ctx.cancel.cancelled and ctx.cancel.reason == "cancel"
                                            and not isinstance(err, StepTimeout)):
            rep.status, rep.error, rep.fix = "cancelled", "stopped at a safe point", Cancelled().fix
            ctx.log("stopped at a safe point")
        else:
            rep.status = "failed"
            if ctx.cancel.reason == "timeout" and not isinstance(err, StepTimeout):
                err = ctx._timeout_error()  # e.g. a subprocess stopped at the deadline: say why
            if isinstance(err, WizardError):
                rep.error, rep.fix = redact(err.message), redact(err.fix) or None
            else:
                rep.error = redact(f"{type(err).__name__}: {err}")
                rep.fix = "this looks like a bug in dynamo-wizard; the step's log has the details"
                tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
                self._write_log(ctx.log_path, redact(tb))
            ctx.log(f"failed: {rep.error}")
        self._emit(StepFinished(step.id, rep.status, elapsed, rep.error, rep.fix, summary=rep.summary))


def _call(step: Step, ctx: StepContext) -> StepResult | None:
    attempt = 1
    while True:
        ctx.check()
        try:
            return step.action(ctx)
        except Exception as err:
            delay = _retry_delay(step, ctx, err, attempt)
            if delay is None:
                raise
            message = err.message if isinstance(err, WizardError) else str(err)
            ctx.log(f"transient failure (attempt {attempt} of {step.retries + 1}): {message}")
            ctx.log(f"trying the step again in {format_duration(delay)}; what it made so far is found and kept")
            ctx.sleep(delay)
            attempt += 1


def _retry_delay(step: Step, ctx: StepContext, err: Exception, attempt: int) -> float | None:
    """Seconds to wait before trying `step` again after `err`, or None when it must fail now."""
    if attempt > step.retries or not is_transient(err) or ctx.cancel.cancelled:
        return None
    delays = ctx._runner.retry_delays or (0.0,)
    delay = delays[min(attempt - 1, len(delays) - 1)]
    if delay >= ctx.remaining():
        return None  # no time left for another attempt: fail with the real error, not a timeout
    return delay


def _summary(report: RunReport) -> str:
    counts: dict[str, int] = {}
    for r in report.steps.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    head = "finished" if report.ok else ("stopped" if report.cancelled else "failed")
    return f"{head} in {format_duration(report.elapsed)}: " + ", ".join(parts)
