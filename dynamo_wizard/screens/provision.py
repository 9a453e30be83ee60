"""Screen 7, Provision: the run as it happens, and what to do when it ends.

- Left: the step list (status, live elapsed). Right: the selected step's log (it follows the step that
  started last until the user picks one; `f` follows again). Below: the pods of the deployment's
  namespace, with why a Pending pod waits. Header: deployment, elapsed time, cost per hour.
- At the end: the endpoint, the port-forward command, the cost per hour and, with a Capacity Block, the
  time left. On failure: the failing step's last lines, the error and its fix, and the ways on: `r` retry
  (the same plan again: done steps are found and adopted, nothing is created twice), `e` edit the plan
  (back to the review), `c` clean up.
- Quitting or going back during a run asks first, then cancels the runner, which stops at a safe point.

Threads: `tui.widgets.run_view.RunMonitor` runs the runner in a thread worker and listens: output lines
go straight into the log buffer (thread-safe, flushed ~20 times a second); every other event is posted
as a `RunEvent` message, so no worker code touches a widget. The pod watch, when there is
one, runs in its own thread worker and feeds a `PodView` the table reads at its own pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..core.catalog import Catalog, load_catalog
from ..core.events import (
    Event,
    ResourceRecorded,
    RunFinished,
    StepStarted,
)
from ..core.inventory import CapacityReservation
from ..core.paths import logs_dir
from ..core.plan import Plan
from ..core.podview import PodView
from ..core.pricing import CostEstimate, format_cost, hourly_cost
from ..core.redact import redact
from ..tui.widgets.confirm import ConfirmDialog
from ..tui.widgets.log_panes import LogPanes
from ..tui.widgets.pod_table import PodTable
from ..tui.widgets.run_view import RunEvent, RunMonitor, RunnerLike
from ..tui.widgets.step_list import StepList, format_elapsed

Clock = Callable[[], float]


RunnerFactory = Callable[[Plan], RunnerLike]
PodWatch = Callable[[Plan, PodView, threading.Event], None]
"""(plan, view, stop): feed `view` (its `namespace` is the plan's) with the pods and events of the plan's
cluster until `stop` is set, waiting and retrying while the cluster is not reachable yet (it does not
exist when the run starts). The app offers one as `app.watch_pods`; cloud.kube implements it."""


# --------------------------------------------------------------------------------------------------
# Plain helpers (no widgets)


def frontend_service(plan: Plan) -> str:
    return f"{plan.graph_name}-frontend"


def port_forward_command(plan: Plan) -> str:
    return f"kubectl -n {plan.namespace} port-forward svc/{frontend_service(plan)} 8000:8000"


def estimate_cost(plan: Plan, catalog: Catalog, summary: Any = None) -> CostEstimate | None:
    """The plan's hourly cost as the review screen computed it (core.pricing): a live price from the
    region's offerings when discovery has one, else the catalog's."""
    offering = next((o for o in getattr(summary, "offerings", None) or ()
                     if o.instance_type == plan.serving.instance_type and o.on_demand_price is not None), None)
    if offering is not None:
        return hourly_cost(plan, offering, offering.on_demand_price, getattr(offering, "price_source", "pricing-api"))
    itype = catalog.instance_type(plan.serving.instance_type)
    if itype is None:
        return None
    return hourly_cost(plan, itype, itype.on_demand_price, "catalog")


def capacity_block_end(plan: Plan, reservations: Sequence[CapacityReservation]) -> datetime | None:
    """When the plan's Capacity Block ends (the earliest, if several match), from discovery's reservations."""
    if plan.reservation is None:
        return None
    ids = set(plan.reservation.ids)
    tags = plan.reservation.tags
    ends = [
        r.end
        for r in reservations
        if r.reservation_type == "capacity-block"
        and r.end is not None
        and (r.id in ids or (tags and all(r.tags.get(k) == v for k, v in tags.items())))
    ]
    return min(ends) if ends else None


def format_time_left(seconds: float) -> str:
    if seconds <= 0:
        return "ended"
    minutes = int(seconds // 60)
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


class Result:
    """The end-of-run panel: headings, label/value rows with a hanging indent, and a line of keys."""

    def __init__(self, title: str, style: str, detail: str = "") -> None:
        self._parts: list[tuple[str, str, str, str]] = []  # kind, a, b, style
        if title:
            self.heading(title, style, detail)

    def heading(self, title: str, style: str, detail: str = "") -> None:
        self._parts.append(("heading", title, detail, style))

    def row(self, label: str, value: str) -> None:
        self._parts.append(("row", label, value, ""))

    def keys(self, text: str) -> None:
        self._parts.append(("keys", text, "", ""))

    def renderable(self) -> Group:
        out: list[Any] = []
        grid: Table | None = None
        for kind, a, b, style in self._parts:
            if kind == "row":
                if grid is None:
                    grid = Table.grid(padding=(0, 1))
                    grid.add_column(style="bold", no_wrap=True, min_width=8)
                    grid.add_column(overflow="fold")
                    out.append(grid)
                grid.add_row(a, Text(b))
                continue
            grid = None
            if kind == "heading":
                out.append(Text.assemble((a, style), ("  " + b) if b else ""))
            else:
                out.append(Text(a, style="bold"))
        return Group(*out)

    def plain(self) -> str:
        lines: list[str] = []
        for kind, a, b, _ in self._parts:
            if kind == "row":
                lines.append(f"{a:<8} {b}")
            elif kind == "heading":
                lines.append(f"{a}  {b}" if b else a)
            else:
                lines.append(a)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------


class ProvisionScreen(Screen[None]):
    """Provisioning a plan, live. `runner` is a runner or a factory `plan -> runner` (needed for retry)."""

    DEFAULT_CSS = """
    ProvisionScreen {
        layout: vertical;
        #prov-header {
            height: 1;
            padding: 0 1;
            background: $panel;
            color: $text;
        }
        #prov-header.-failed { background: $error 30%; }
        #prov-header.-done { background: $success 30%; }
        #prov-main { height: 1fr; }
        #prov-right { width: 1fr; }
        #prov-pods { height: 9; }
        #prov-result {
            height: auto;
            max-height: 70%;
            padding: 0 1;
            border: round $success;
            display: none;
            overflow-y: auto;
        }
        #prov-result.-shown { display: block; }
        #prov-result.-failed { border: round $error; }
        #prov-result.-cancelled { border: round $warning; }
    }
    """

    BINDINGS = [
        Binding("q", "quit_wizard", "Quit"),
        Binding("escape", "edit_plan", "Back", show=False),
        Binding("f", "follow", "Follow run"),
        Binding("r", "retry", "Retry"),
        Binding("e", "edit_plan", "Edit plan"),
        Binding("c", "cleanup", "Clean up"),
        Binding("p", "focus_pods", "Pods", show=False),
        Binding("s", "focus_steps", "Steps", show=False),
    ]

    def __init__(
        self,
        plan: Plan | None = None,
        runner: RunnerLike | RunnerFactory | None = None,
        *,
        clock: Clock = time.time,
        log_dir: Path | None = None,
        pod_watch: PodWatch | None = None,
        catalog: Catalog | None = None,
        hourly_cost: float | None = None,
        reservations: Sequence[CapacityReservation] | None = None,
        autostart: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._plan = plan
        self._runner_source = runner
        self.clock = clock
        self._log_dir = log_dir
        self._pod_watch = pod_watch
        self._catalog = catalog
        self._hourly_cost = hourly_cost
        self._cost: CostEstimate | None = None
        self._reservations = reservations
        self.autostart = autostart
        self.state = "idle"  # idle | running | stopping | done | failed | cancelled
        self.runner: RunnerLike | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.resources: list[ResourceRecorded] = []
        self.summary = ""
        self.result_plain = ""
        """The result panel's text (for tests and the headless views)."""
        self._leave_after_stop: str | None = None  # "quit" | "back"
        self._pod_view: PodView | None = None
        self._pod_stop = threading.Event()

    # -- plan and backends ---------------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            plan = getattr(self.app, "confirmed_plan", None)
            if plan is None:
                raise RuntimeError("no plan to provision: confirm one on the review screen first")
            self._plan = plan
        return self._plan

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = getattr(self.app, "catalog", None) or load_catalog()
        return self._catalog

    def _make_runner(self) -> RunnerLike:
        source = self._runner_source
        if source is None:
            factory = getattr(self.app, "make_runner", None)
            if factory is None:
                raise RuntimeError("no runner: the app has no make_runner(plan) and none was given")
            source = factory
        if isinstance(source, RunnerLike):
            if self.run_number >= 1:
                # A runner object runs once; retry needs a factory.
                raise RuntimeError("this runner cannot run again; give the screen a runner factory")
            return source
        return source(self.plan)

    # -- layout --------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        log_dir = self._log_dir or logs_dir(self.plan.deployment)
        yield Static(id="prov-header")
        with Horizontal(id="prov-main"):
            yield StepList(clock=self.clock, id="prov-steps")
            with Vertical(id="prov-right"):
                with Vertical(id="prov-result"):
                    yield Static(id="prov-result-text")
                yield LogPanes(log_dir, id="prov-logs")
        yield PodTable(clock=self.clock, id="prov-pods")
        yield Footer()

    @property
    def step_list(self) -> StepList:
        return self.query_one("#prov-steps", StepList)

    @property
    def log_panes(self) -> LogPanes:
        return self.query_one("#prov-logs", LogPanes)

    @property
    def pod_table(self) -> PodTable:
        return self.query_one("#prov-pods", PodTable)

    def on_mount(self) -> None:
        self.monitor = RunMonitor(self, self.step_list, self.log_panes, worker_name="provision-runner")
        self.title = f"Provisioning {self.plan.deployment}"
        self.pod_table.border_title = f"Pods in {self.plan.namespace}"
        self._pod_view = PodView(namespace=self.plan.namespace)
        self.pod_table.attach(self._pod_view)
        self._update_header()
        self.set_interval(1.0, self._update_header, name="provision-header")
        if self.autostart:
            self.start_run()

    def on_unmount(self) -> None:
        self._pod_stop.set()
        if self.runner is not None and self.state in ("running", "stopping"):
            self.runner.cancel()

    # -- running -------------------------------------------------------------------------------------

    def start_run(self) -> None:
        """Start (or, after a failure, resume) the run in a thread worker."""
        if self.state in ("running", "stopping"):
            return
        try:
            runner = self._make_runner()
        except Exception as err:  # noqa: BLE001 - shown to the user, never a traceback
            self._show_result_text(Result("✗ Cannot start", "bold", redact(str(err))), "failed")
            self.state = "failed"
            return
        self.runner = runner
        self.state = "running"
        self.summary = ""
        self.started_at = self.clock()
        self.finished_at = None
        self.remove_class("-finished")
        self._show_result_text(None, "")
        self.monitor.start(runner)
        self._update_header()
        self._start_pod_watch()

    @property
    def run_number(self) -> int:
        return self.monitor.run_number if self.is_mounted else 0

    @property
    def failed_steps(self) -> list[str]:
        return self.monitor.failed_steps

    def feed(self, event: Event) -> None:
        """Apply an event as if the runner had sent it (tests, and replays of a recorded run)."""
        self.monitor.feed(event)

    @on(RunEvent)
    def _on_run_event(self, message: RunEvent) -> None:
        if not self.monitor.apply(message):
            return  # from an earlier attempt
        event = message.event
        if isinstance(event, StepStarted):
            if self.started_at is None or event.at < self.started_at:
                self.started_at = event.at  # the run began with its first step
        elif isinstance(event, ResourceRecorded):
            self.resources.append(event)
        elif isinstance(event, RunFinished):
            self._finished(event)
        self._update_header()

    def _finished(self, event: RunFinished) -> None:
        self.finished_at = self.clock()
        self.summary = redact(event.summary)
        if event.ok:
            self.state = "done"
        elif event.cancelled or (self.state == "stopping" and not self.failed_steps):
            self.state = "cancelled"
        else:
            self.state = "failed"
        self.add_class("-finished")
        self._pod_stop.set()
        if self.state == "done":
            self._show_result_text(self._success_text(), "done")
        elif self.state == "failed":
            self._show_result_text(self._failure_text(), "failed")
        else:
            self._show_result_text(self._cancelled_text(), "cancelled")
        self.refresh_bindings()
        leave, self._leave_after_stop = self._leave_after_stop, None
        if leave == "quit":
            self.app.exit()
        elif leave == "back":
            self._go_back()

    # -- pods ----------------------------------------------------------------------------------------

    def _start_pod_watch(self) -> None:
        watch = self._pod_watch or getattr(self.app, "watch_pods", None)
        if watch is None or not callable(watch) or self._pod_view is None:
            return
        self._pod_stop = threading.Event()
        view, stop, plan = self._pod_view, self._pod_stop, self.plan

        def follow_pods() -> None:
            try:
                watch(plan, view, stop)
            except Exception as err:  # noqa: BLE001 - the run goes on without the table
                text = redact(f"The pod table stopped following the cluster: {err}")
                self.app.call_from_thread(self.notify, text, severity="warning", timeout=15)

        self.run_worker(follow_pods, thread=True, name="provision-pod-watch", group="provision-pods",
                        exit_on_error=False)

    @property
    def pod_view(self) -> PodView | None:
        return self._pod_view

    # -- header and results --------------------------------------------------------------------------

    def cost(self) -> CostEstimate | None:
        if self._cost is None:
            cached = getattr(self.app, "cached_region_summary", None)
            summary = cached(self.plan.region) if callable(cached) else None
            self._cost = estimate_cost(self.plan, self.catalog, summary)
        return self._cost

    def hourly_cost(self) -> float | None:
        if self._hourly_cost is None:
            estimate = self.cost()
            self._hourly_cost = estimate.total_per_hour if estimate is not None else None
        return self._hourly_cost

    def _capacity_block_end(self) -> datetime | None:
        reservations = self._reservations
        if reservations is None:
            cached = getattr(self.app, "cached_reservations", None)
            reservations = cached(self.plan.region) if callable(cached) else []
        return capacity_block_end(self.plan, reservations)

    def _elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or self.clock()) - self.started_at

    def header_text(self) -> str:
        plan = self.plan
        counts = self.step_list.counts() if self.is_mounted else {}
        total = sum(counts.values())
        finished = sum(counts.get(s, 0) for s in ("done", "skipped"))
        cost = self.hourly_cost()
        state = {
            "idle": "ready",
            "running": "provisioning",
            "stopping": "stopping at a safe point…",
            "done": "serving",
            "failed": "FAILED",
            "cancelled": "stopped",
        }[self.state]
        parts = [
            f"{plan.deployment}: {state}",
            f"{plan.region}",
            f"{plan.serving.instance_type}",
            f"elapsed {format_elapsed(self._elapsed())}",
        ]
        if total:
            parts.append(f"{finished}/{total} steps")
        parts.append(f"≈ ${cost:,.2f}/h" if cost is not None else "cost unknown")
        end = self._capacity_block_end()
        if end is not None:
            parts.append(f"block left {format_time_left(end.timestamp() - self.clock())}")
        return " · ".join(parts)

    def _update_header(self) -> None:
        header = self.query_one("#prov-header", Static)
        header.update(Text(self.header_text()))
        header.set_class(self.state == "failed", "-failed")
        header.set_class(self.state == "done", "-done")

    def _show_result_text(self, result: Result | None, kind: str) -> None:
        box = self.query_one("#prov-result", Vertical)
        box.set_class(result is not None, "-shown")
        for k in ("done", "failed", "cancelled"):
            box.set_class(kind == k, f"-{k}")
        self.result_plain = result.plain() if result is not None else ""
        self.query_one("#prov-result-text", Static).update(result.renderable() if result is not None else "")

    def _style(self, name: str) -> str:
        color = self.app.theme_variables.get(name)
        return f"bold {color}" if color else "bold"

    def _success_text(self) -> Result:
        plan = self.plan
        result = Result(f"✓ Serving {plan.serving.model}", self._style("success"),
                        f"graph {plan.graph_name} in {plan.namespace}")
        result.row("Endpoint", "http://localhost:8000/v1 (OpenAI-compatible), once port-forwarded")
        result.row("Forward", port_forward_command(plan))
        result.row("Try", "curl localhost:8000/v1/models")
        estimate = self.cost()
        if self._hourly_cost is not None and (estimate is None or estimate.total_per_hour != self._hourly_cost):
            result.row("Cost", f"≈ ${self._hourly_cost:,.2f}/h while it runs")
        elif estimate is not None:
            result.row("Cost", f"≈ {format_cost(estimate)} while it runs")
        else:
            result.row("Cost", "unknown for this instance type")
        end = self._capacity_block_end()
        if end is not None:
            left = format_time_left(end.timestamp() - self.clock())
            result.row("Block", f"Capacity Block ends in {left} ({end:%Y-%m-%d %H:%M %Z})")
        result.keys("c clean up everything · q quit (the deployment keeps running, and billing)")
        return result

    def _failure_text(self) -> Result:
        if not self.failed_steps:
            result = Result("✗ The run stopped", self._style("error"), self.summary)
        else:
            result = Result("", "")
        for step_id in self.failed_steps[:2]:
            state = self.step_list.states.get(step_id)
            title = state.title if state else step_id
            after = f"after {format_elapsed(state.elapsed)}" if state and state.elapsed is not None else ""
            result.heading(f"✗ {title} failed", self._style("error"), after)
            if state and state.error:
                result.row("Error", redact(state.error))
            if state and state.fix:
                result.row("Fix", redact(state.fix))
        if len(self.failed_steps) > 2:
            result.row("Also", ", ".join(self.failed_steps[2:]) + " failed (see their logs)")
        blocked = [s.title for s in self.step_list.states.values() if s.status == "blocked"]
        if blocked:
            result.row("Not run", ", ".join(blocked) + " (they wait on the failure)")
        result.keys("r retry (resumes; nothing is created twice) · e edit the plan · c clean up")
        return result

    def _cancelled_text(self) -> Result:
        result = Result("■ Stopped at a safe point", self._style("warning"), "what was created is in the ledger")
        result.keys("r resume · e edit the plan · c clean up · q quit")
        return result

    # -- selection -----------------------------------------------------------------------------------

    @on(StepList.StepSelected)
    def _step_selected(self, message: StepList.StepSelected) -> None:
        self.monitor.step_selected(message)

    def action_follow(self) -> None:
        self.monitor.follow_run()
        self.notify("Following the run.", timeout=2)

    def action_focus_pods(self) -> None:
        self.pod_table.focus()

    def action_focus_steps(self) -> None:
        self.step_list.focus()

    # -- leaving, retrying, cleaning up --------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.state in ("failed", "cancelled")
        if action == "cleanup":
            return self.state in ("failed", "cancelled", "done")
        if action == "follow":
            return self.state == "running"
        return True

    def action_retry(self) -> None:
        if self.state in ("failed", "cancelled"):
            self.start_run()

    def _stop_then(self, leave: str, title: str, message: str) -> None:
        def answered(stop: bool | None) -> None:
            if not stop:
                return
            if self.state == "running" and self.runner is not None:
                self._leave_after_stop = leave
                self.state = "stopping"
                self._update_header()
                self.runner.cancel()
            elif leave == "quit":
                self.app.exit()
            else:
                self._go_back()

        self.app.push_screen(ConfirmDialog(title, message, confirm_label="Stop", cancel_label="Keep going",
                                           destructive=True), answered)

    def request_quit(self) -> None:
        """For the app's own quit (ctrl+q, a priority binding the screen cannot see first): ask, stop at a
        safe point, then exit; exits at once when nothing runs."""
        self.action_quit_wizard()

    def action_quit_wizard(self) -> None:
        if self.state == "running":
            self._stop_then(
                "quit",
                "Stop provisioning and quit?",
                "Steps in progress stop at a safe point; everything created so far stays recorded in the "
                "ledger. Resume later with `dynamo-wizard apply` or Resume on the welcome screen, or clean up.",
            )
        elif self.state == "stopping":
            self._leave_after_stop = "quit"
            self._offer_force_stop()
        else:
            self.app.exit()

    def _offer_force_stop(self) -> None:
        """Asked to quit again while stopping: eksctl or helm may still be finishing (a cluster takes 15
        minutes); offer to interrupt them now (the runner's forced cancel)."""

        def answered(force: bool | None) -> None:
            if force and self.runner is not None and self.state == "stopping":
                self.runner.cancel(force=True)
                self.notify("Interrupting eksctl and helm; what exists stays in the ledger for resume or cleanup.")
            else:
                self.notify("Stopping at a safe point; the wizard quits when the steps have stopped.")

        self.app.push_screen(ConfirmDialog(
            "Stop now?",
            "Steps are finishing their current operation (eksctl or helm can take minutes). Stopping now "
            "interrupts them; everything created so far is in the ledger, so a later apply resumes and "
            "cleanup still finds it.",
            confirm_label="Stop now", cancel_label="Wait", destructive=True), answered)

    def action_edit_plan(self) -> None:
        if self.state == "running":
            self._stop_then(
                "back",
                "Stop provisioning and edit the plan?",
                "Steps in progress stop at a safe point; what was created stays in the ledger and is adopted "
                "when you apply the plan again.",
            )
        elif self.state == "stopping":
            self._leave_after_stop = "back"
        else:
            self._go_back()

    def _go_back(self) -> None:
        self._pod_stop.set()
        app = self.app
        if len(app.screen_stack) > 1 and app.screen is self:
            app.call_later(_leave, app, self)

    def action_cleanup(self) -> None:
        if self.state in ("running", "stopping"):
            return
        deployment = self.plan.deployment
        start_cleanup = getattr(self.app, "start_cleanup", None)
        if callable(start_cleanup):
            start_cleanup(deployment)
        elif self.app.is_screen_installed("cleanup"):
            self.app.push_screen("cleanup")
        else:
            self.notify(f"Run `dynamo-wizard cleanup --deployment {deployment}` to delete what it created.",
                        title="Clean up", timeout=20)


# --------------------------------------------------------------------------------------------------
# Installing into the app


SCREEN_NAME = "provision"


def install(app: App[Any]) -> None:
    """Install the screen under "provision": a factory, so each push after leaving starts afresh."""
    if not app.is_screen_installed(SCREEN_NAME):
        app.install_screen(ProvisionScreen, SCREEN_NAME)  # type: ignore[arg-type]


async def _leave(app: App[Any], screen: ProvisionScreen) -> None:
    """Back to the plan. An installed screen would be kept and shown again as it was; this one is
    replaced by a fresh factory, so confirming a plan again starts a new run for that plan."""
    await app.pop_screen()
    if app.uninstall_screen(screen) is not None:
        install(app)
        await screen.remove()
