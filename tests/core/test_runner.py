"""The runner on pure-python steps: concurrency, blocking on failure, cancel, timeouts, redaction, logs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dynamo_wizard.core.errors import StepError
from dynamo_wizard.core.events import (
    Event,
    ResourceRecorded,
    RunFinished,
    RunStarted,
    StepFinished,
    StepOutput,
    StepStarted,
)
from dynamo_wizard.core.ledger import Ledger
from dynamo_wizard.core.redact import clear_secrets, register_secret
from dynamo_wizard.core.runner import (
    GraphError,
    Runner,
    Step,
    StepContext,
    StepInfo,
    critical_path,
    done,
    skipped,
)

WAIT = 10.0  # generous bound for anything that should happen at once


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def finished(self) -> dict[str, StepFinished]:
        return {e.step_id: e for e in self.events if isinstance(e, StepFinished)}

    def lines(self, step_id: str) -> list[str]:
        return [e.line for e in self.events if isinstance(e, StepOutput) and e.step_id == step_id]


def make_runner(steps: list[Step], tmp_path: Path, **kw: object) -> tuple[Runner, Recorder]:
    rec = Recorder()
    runner = Runner(steps, deployment="demo", listeners=[rec], log_dir=tmp_path, **kw)  # type: ignore[arg-type]
    return runner, rec


def test_independent_steps_run_concurrently_and_dependants_wait(tmp_path: Path) -> None:
    # a and b each wait until the other has started: this only finishes if they run at the same time.
    a_started, b_started = threading.Event(), threading.Event()
    order: list[str] = []

    def a(ctx: StepContext) -> None:
        a_started.set()
        assert b_started.wait(WAIT), "b did not run while a was running"
        order.append("a")

    def b(ctx: StepContext) -> None:
        b_started.set()
        assert a_started.wait(WAIT), "a did not run while b was running"
        order.append("b")

    def c(ctx: StepContext) -> None:
        order.append("c")

    runner, rec = make_runner([Step("a", "A", a), Step("b", "B", b), Step("c", "C", c, deps=("a", "b"))], tmp_path)
    report = runner.run()
    assert report.ok
    assert order[-1] == "c" and set(order[:2]) == {"a", "b"}
    assert isinstance(rec.events[0], RunStarted)
    assert [s.step_id for s in rec.events[0].steps] == ["a", "b", "c"]
    assert isinstance(rec.events[-1], RunFinished) and rec.events[-1].ok


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    def work(ctx: StepContext) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        ctx.sleep(0.05)
        with lock:
            active -= 1

    runner, _ = make_runner([Step(f"s{i}", f"S{i}", work) for i in range(6)], tmp_path, max_workers=2)
    assert runner.run().ok
    assert peak == 2


def test_failure_blocks_only_dependants(tmp_path: Path) -> None:
    ran: list[str] = []

    def fail(ctx: StepContext) -> None:
        ctx.log("about to fail")
        raise StepError("the thing broke", "fix the thing")

    def ok(name: str):
        def action(ctx: StepContext) -> None:
            ran.append(name)
        return action

    steps = [
        Step("bad", "Bad", fail),
        Step("child", "Child", ok("child"), deps=("bad",)),
        Step("grandchild", "Grandchild", ok("grandchild"), deps=("child",)),
        Step("other", "Other", ok("other")),
        Step("after-other", "After other", ok("after-other"), deps=("other",)),
    ]
    runner, rec = make_runner(steps, tmp_path)
    report = runner.run()
    assert not report.ok and not report.cancelled
    fin = rec.finished()
    assert fin["bad"].status == "failed"
    assert fin["bad"].error == "the thing broke" and fin["bad"].fix == "fix the thing"
    assert fin["child"].status == "blocked" and "Bad" in (fin["child"].error or "")
    assert fin["grandchild"].status == "blocked"
    assert fin["other"].status == "done" and fin["after-other"].status == "done"
    assert sorted(ran) == ["after-other", "other"]


def test_optional_step_failure_does_not_block(tmp_path: Path) -> None:
    def fail(ctx: StepContext) -> None:
        raise StepError("warm-up failed")

    ran = threading.Event()
    steps = [Step("warm", "Warm", fail, optional=True), Step("next", "Next", lambda ctx: ran.set(), deps=("warm",))]
    runner, rec = make_runner(steps, tmp_path)
    report = runner.run()
    assert ran.is_set() and report.ok
    assert rec.finished()["warm"].status == "failed"


def test_unexpected_exception_is_a_failure_with_traceback_in_the_log_only(tmp_path: Path) -> None:
    def boom(ctx: StepContext) -> None:
        raise KeyError("missing-key")

    runner, rec = make_runner([Step("boom", "Boom", boom)], tmp_path)
    runner.run()
    fin = rec.finished()["boom"]
    assert fin.status == "failed" and "KeyError" in (fin.error or "") and "Traceback" not in (fin.error or "")
    assert "Traceback" in (tmp_path / "boom.log").read_text()


def test_cancel_stops_at_a_safe_point_and_marks_the_rest(tmp_path: Path) -> None:
    inside = threading.Event()
    reached_after: list[bool] = []

    def long(ctx: StepContext) -> None:
        inside.set()
        ctx.wait_until(lambda: False, "something that never comes", interval=0.05)
        reached_after.append(True)

    steps = [Step("long", "Long", long), Step("later", "Later", lambda ctx: None, deps=("long",))]
    runner, rec = make_runner(steps, tmp_path)
    threading.Thread(target=lambda: (inside.wait(WAIT), runner.cancel()), daemon=True).start()
    report = runner.run()
    assert report.cancelled and not report.ok
    fin = rec.finished()
    assert fin["long"].status == "cancelled" and fin["later"].status == "cancelled"
    assert reached_after == []
    assert isinstance(rec.events[-1], RunFinished) and rec.events[-1].cancelled


def test_first_cancel_is_soft_second_is_forced(tmp_path: Path) -> None:
    inside = threading.Event()
    seen: list[tuple[bool, bool]] = []

    def unsafe(ctx: StepContext) -> None:
        inside.set()
        # Like eksctl: keep going through a soft cancel, stop only when forced.
        while not ctx.cancel.forced:
            ctx.cancel.wait(0.02)
            seen.append((ctx.cancel.cancelled, ctx.cancel.forced))
        ctx.check()

    runner, rec = make_runner([Step("unsafe", "Unsafe", unsafe)], tmp_path)

    def cancel_twice() -> None:
        inside.wait(WAIT)
        runner.cancel()
        runner.cancel()

    threading.Thread(target=cancel_twice, daemon=True).start()
    report = runner.run()
    assert report.cancelled
    assert rec.finished()["unsafe"].status == "cancelled"


def test_timeout_fails_the_step_with_a_clear_message(tmp_path: Path) -> None:
    def slow(ctx: StepContext) -> None:
        ctx.wait_until(lambda: None, "the slow thing", interval=0.02)

    steps = [Step("slow", "Slow thing", slow, timeout=0.2, timeout_fix="look at the slow thing"),
             Step("after", "After", lambda ctx: None, deps=("slow",))]
    runner, rec = make_runner(steps, tmp_path)
    report = runner.run()
    fin = rec.finished()
    assert fin["slow"].status == "failed"
    assert "did not finish within" in (fin["slow"].error or "") and "Slow thing" in (fin["slow"].error or "")
    assert fin["slow"].fix == "look at the slow thing"
    assert fin["after"].status == "blocked"
    assert not report.cancelled


def test_a_step_that_ignores_its_deadline_is_abandoned(tmp_path: Path) -> None:
    release = threading.Event()

    def stuck(ctx: StepContext) -> None:
        release.wait(WAIT)  # never checks the token

    runner, rec = make_runner([Step("stuck", "Stuck", stuck, timeout=0.1)], tmp_path, abandon_grace=0.1)
    try:
        report = runner.run()
    finally:
        release.set()
    assert report.status("stuck") == "failed"
    assert "did not finish within" in (rec.finished()["stuck"].error or "")


def test_output_is_redacted_and_written_to_the_step_log(tmp_path: Path) -> None:
    register_secret("s3cr3t-token-value")
    try:
        def talk(ctx: StepContext) -> None:
            ctx.log("token is s3cr3t-token-value")
            ctx.log("and hf_abcdefghijklmnopqrstuvwxyz123 too\nsecond line")
            raise StepError("failed with s3cr3t-token-value")

        runner, rec = make_runner([Step("talk", "Talk", talk)], tmp_path)
        runner.run()
    finally:
        clear_secrets()
    lines = rec.lines("talk")
    assert "token is ****" in lines and "and **** too" in lines and "second line" in lines
    text = (tmp_path / "talk.log").read_text()
    assert "s3cr3t" not in text and "hf_abc" not in text and "token is ****" in text
    assert rec.finished()["talk"].error == "failed with ****"
    started = next(e for e in rec.events if isinstance(e, StepStarted))
    assert started.log_path == str(tmp_path / "talk.log")


def test_skipped_and_ledger_events(tmp_path: Path) -> None:
    ledger = Ledger("demo", path=tmp_path / "ledger.jsonl")

    def create(ctx: StepContext):
        ctx.intent("security-group", "sg-name", vpc="vpc-1")
        ctx.created("security-group", "sg-name", "sg-123")
        return done("created sg-123")

    def adopt(ctx: StepContext):
        ctx.adopted("efs-file-system", "token", "fs-1")
        return skipped("file system fs-1 already there")

    runner, rec = make_runner([Step("c", "C", create), Step("a", "A", adopt)], tmp_path, ledger=ledger)
    assert runner.run().ok
    fin = rec.finished()
    assert fin["a"].status == "skipped" and fin["a"].summary == "file system fs-1 already there"
    recorded = [(e.action, e.kind, e.resource_id) for e in rec.events if isinstance(e, ResourceRecorded)]
    assert ("intent", "security-group", None) in recorded and ("created", "security-group", "sg-123") in recorded
    states = {(r.kind, r.name): (r.state, r.resource_id, r.step) for r in ledger.resources()}
    assert states[("security-group", "sg-name")] == ("created", "sg-123", "c")
    assert states[("efs-file-system", "token")] == ("adopted", "fs-1", "a")


def test_bad_graphs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="unknown"):
        Runner([Step("a", "A", lambda c: None, deps=("nope",))], deployment="d", log_dir=tmp_path)
    with pytest.raises(GraphError, match="cycle"):
        Runner([Step("a", "A", lambda c: None, deps=("b",)), Step("b", "B", lambda c: None, deps=("a",))],
               deployment="d", log_dir=tmp_path)
    with pytest.raises(GraphError, match="twice"):
        Runner([Step("a", "A", lambda c: None), Step("a", "A2", lambda c: None)], deployment="d", log_dir=tmp_path)


def test_critical_path() -> None:
    infos = [StepInfo("a", "A", (), 1, False), StepInfo("b", "B", ("a",), 1, False),
             StepInfo("c", "C", ("a",), 1, False), StepInfo("d", "D", ("b", "c"), 1, False)]
    assert critical_path(infos, {"a": 1, "b": 5, "c": 2, "d": 1}) == 7


def test_listener_errors_do_not_break_the_run(tmp_path: Path) -> None:
    def bad_listener(event: Event) -> None:
        raise RuntimeError("listener bug")

    runner, rec = make_runner([Step("a", "A", lambda ctx: None)], tmp_path)
    runner.add_listener(bad_listener)
    assert runner.run().ok


# -- transient failures: a step is tried again -------------------------------------------------------


def flaky(failures: list[Exception], calls: list[int], then: object = None) -> object:
    """An action that raises the given errors in turn, then finishes (counting its calls)."""

    def action(ctx: StepContext) -> object:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        ctx.log("made it")
        return then or done()

    return action


def test_a_step_failing_transiently_is_tried_again_and_the_run_succeeds(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import BackendError, Unreachable

    calls: list[int] = []
    errors: list[Exception] = [BackendError("GET nodepools failed (500: boom)", status=500),
                               Unreachable("the API server did not answer")]
    after: list[int] = []
    runner, rec = make_runner([
        Step("a", "A", flaky(errors, calls)),  # type: ignore[arg-type]
        Step("b", "B", lambda ctx: after.append(1) or done(), deps=("a",)),
    ], tmp_path, retry_delays=(0.0, 0.01))
    report = runner.run()
    assert report.ok, report
    assert len(calls) == 3 and after == [1]
    lines = rec.lines("a")
    assert any("transient failure (attempt 1 of 3): GET nodepools failed (500: boom)" in x for x in lines)
    assert any("transient failure (attempt 2 of 3): the API server did not answer" in x for x in lines)
    assert lines[-2:] == ["made it", lines[-1]] and lines[-1].startswith("done in")
    # One start and one finish for the step, however many attempts: the UI sees a single step.
    assert [e.step_id for e in rec.events if isinstance(e, StepStarted)] == ["a", "b"]
    assert rec.finished()["a"].status == "done"
    assert "transient failure (attempt 1 of 3)" in (tmp_path / "a.log").read_text()


def test_a_step_that_keeps_failing_transiently_fails_after_its_last_attempt(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import BackendError

    calls: list[int] = []
    errors: list[Exception] = [BackendError("CreateFileSystem failed (ThrottlingException): slow down",
                                            "wait a minute", code="ThrottlingException") for _ in range(5)]
    runner, rec = make_runner([Step("a", "A", flaky(errors, calls), retries=2)],  # type: ignore[arg-type]
                              tmp_path, retry_delays=(0.0,))
    report = runner.run()
    assert not report.ok and len(calls) == 3
    fin = rec.finished()["a"]
    assert fin.status == "failed" and "ThrottlingException" in (fin.error or "") and fin.fix == "wait a minute"


def test_only_transient_errors_are_tried_again(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import BackendError, Conflict, NotAuthorized

    for err in (StepError("helm upgrade --install exited 1", "fix the chart"),
                NotAuthorized("denied", status=403), BackendError("refused (422: invalid)", status=422),
                Conflict("exists", status=409), ValueError("a bug")):
        calls: list[int] = []
        runner, rec = make_runner([Step("a", "A", flaky([err], calls))],  # type: ignore[arg-type]
                                  tmp_path, retry_delays=(0.0,))
        assert not runner.run().ok, err
        assert len(calls) == 1, f"{err!r} was tried again"
        assert not any("transient failure" in x for x in rec.lines("a"))


def test_no_retry_when_the_wait_would_pass_the_deadline_or_the_run_was_cancelled(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import Unreachable

    calls: list[int] = []
    runner, rec = make_runner([Step("a", "A", flaky([Unreachable("no answer")], calls), timeout=5.0)],
                              tmp_path, retry_delays=(60.0,))
    report = runner.run()
    assert len(calls) == 1 and rec.finished()["a"].error == "no answer", "failed with its own error, not a timeout"
    assert not report.ok

    # Cancelled while the step fails: the run stops, no second attempt.
    calls2: list[int] = []
    holder: dict[str, Runner] = {}

    def cancel_then_fail(ctx: StepContext) -> object:
        calls2.append(1)
        holder["r"].cancel()
        raise Unreachable("no answer")

    runner2, rec2 = make_runner([Step("a", "A", cancel_then_fail)], tmp_path / "2", retry_delays=(0.0,))
    holder["r"] = runner2
    runner2.run()
    assert len(calls2) == 1 and rec2.finished()["a"].status == "cancelled"


def test_retries_zero_fails_at_once(tmp_path: Path) -> None:
    from dynamo_wizard.core.protocols import Unreachable

    calls: list[int] = []
    runner, _ = make_runner([Step("a", "A", flaky([Unreachable("x")], calls), retries=0)],  # type: ignore[arg-type]
                            tmp_path, retry_delays=(0.0,))
    assert not runner.run().ok and len(calls) == 1
