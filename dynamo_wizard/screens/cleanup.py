"""Screen 8, Cleanup: everything a deployment created (its ledger) or that carries its tag or labels, in
deletion order, with check boxes; a typed confirmation; then the same live step list and log panes as
provisioning while it deletes.

- Without a deployment (the command palette), the known ones are listed first (ledger ∪ tag).
- The list: a check box (all live ones checked), kind, name, state (exists / gone / in ledger only) and
  cost per hour where it has one. `space` toggles the row, `a` all, `enter` deletes what is checked
  after the deployment's name is typed into the confirmation.
- The run: step list and log panes (tui.widgets.run_view); `escape` asks, then stops at a safe point.
  At the end: what is gone, or what could not be deleted with why and the command to do it by hand;
  `r` looks again (and resumes what is left).

Threads: discovery and the run are thread workers; nothing in them touches a widget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from ..core.cleanup import Inventory, InventoryItem, kind_title, manual_command, plan_deletion, selection_warnings
from ..core.events import RunFinished
from ..core.paths import logs_dir, state_dir
from ..core.redact import redact
from ..tui.widgets.chrome import ModeBanner
from ..tui.widgets.confirm import ConfirmDialog
from ..tui.widgets.log_panes import LogPanes
from ..tui.widgets.run_view import RunEvent, RunMonitor
from ..tui.widgets.step_list import StepList, format_elapsed
from .provision import Result

SCREEN_NAME = "cleanup"
Key = tuple[str, str, str]
SessionFactory = Callable[[str], Any]  # deployment -> commands.cleanup.CleanupSession
DeploymentLister = Callable[[], tuple[dict[str, tuple[str, str]], list[str]]]

STATE_TEXT = {"exists": "exists", "gone": "gone", "ledger-only": "in ledger only"}


def format_cost(cost: float | None) -> str:
    if not cost:
        return ""
    return "<$0.01/h" if cost < 0.01 else f"${cost:,.2f}/h"


class CleanupScreen(Screen[None]):
    DEFAULT_CSS = """
    CleanupScreen {
        layout: vertical;
        #cleanup-header { height: 1; padding: 0 1; background: $panel; color: $text; }
        #cleanup-header.-failed { background: $error 30%; }
        #cleanup-header.-done { background: $success 30%; }
        #cleanup-switcher { height: 1fr; }
        #cleanup-picker, #cleanup-list-pane, #cleanup-run { height: 1fr; }
        #cleanup-table { height: 1fr; }
        #cleanup-notes { height: auto; max-height: 6; padding: 0 1; color: $text-muted; }
        #cleanup-hint { height: 1; padding: 0 1; color: $text-muted; }
        #cleanup-steps { width: 46; }
        #cleanup-result { height: auto; max-height: 14; padding: 0 1; border: round $success; display: none; }
        #cleanup-result.-shown { display: block; }
        #cleanup-result.-failed { border: round $error; }
        #cleanup-result.-cancelled { border: round $warning; }
    }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("space", "toggle_row", "Toggle"),
        Binding("a", "toggle_all", "All"),
        Binding("enter", "proceed", "Delete checked", priority=False),
        Binding("r", "reload", "Look again"),
        Binding("f", "follow", "Follow run", show=False),
    ]

    class Loaded(Message):
        def __init__(self, session: Any | None, error: str | None = None, fix: str | None = None) -> None:
            super().__init__()
            self.session = session
            self.error = error
            self.fix = fix

    class DeploymentsListed(Message):
        def __init__(self, deployments: dict[str, tuple[str, str]], notes: list[str]) -> None:
            super().__init__()
            self.deployments = deployments
            self.notes = notes

    class Verified(Message):
        def __init__(self, left: list[InventoryItem], inventory: Inventory | None, error: str | None) -> None:
            super().__init__()
            self.left = left
            self.inventory = inventory
            self.error = error

    def __init__(
        self,
        deployment: str | None = None,
        *,
        session_factory: SessionFactory | None = None,
        list_deployments: DeploymentLister | None = None,
        pacing: Any = None,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._deployment = deployment
        self._session_factory = session_factory
        self._list_deployments = list_deployments
        self._pacing = pacing
        self.clock = clock
        self.session: Any | None = None
        self.inventory: Inventory | None = None
        self.checked: set[Key] = set()
        self.state = "loading"  # picking | loading | listing | running | stopping | done | failed | cancelled
        self.runner: Any | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.left_after: list[InventoryItem] | None = None
        self.error: str | None = None

    # -- layout --------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ModeBanner(getattr(self.app, "mode_banner", None), id="mode-banner")
        yield Static(id="cleanup-header")
        with ContentSwitcher(initial="cleanup-list-pane", id="cleanup-switcher"):
            yield OptionList(id="cleanup-picker")
            with Vertical(id="cleanup-list-pane"):
                table: DataTable[Any] = DataTable(id="cleanup-table", cursor_type="row", zebra_stripes=True)
                yield table
                yield Static(id="cleanup-notes")
                yield Static("space toggle · a all · enter delete what is checked · r look again · escape back",
                             id="cleanup-hint")
            with Horizontal(id="cleanup-run"):
                yield StepList(clock=self.clock, id="cleanup-steps")
                with Vertical():
                    with Vertical(id="cleanup-result"):
                        yield Static(id="cleanup-result-text")
                    yield LogPanes(self._log_dir(), id="cleanup-logs")
        yield Footer()

    def _log_dir(self) -> Path:
        """Where the panes keep lines until the run says where its own logs are (RunStarted)."""
        deployment = self.deployment
        path = logs_dir(deployment) / "cleanup" if deployment else state_dir() / "cleanup-logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def deployment(self) -> str | None:
        if self._deployment is None:
            self._deployment = getattr(self.app, "cleanup_deployment", None) if self.is_attached else None
        return self._deployment

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#cleanup-table", DataTable)

    @property
    def step_list(self) -> StepList:
        return self.query_one("#cleanup-steps", StepList)

    @property
    def log_panes(self) -> LogPanes:
        return self.query_one("#cleanup-logs", LogPanes)

    def on_mount(self) -> None:
        self.title = "Clean up"
        self.set_interval(1.0, self._update_header, name="cleanup-header")
        self._when_ready()

    def _when_ready(self) -> None:
        """Set up once the panes inside the switcher are mounted: a container's composed children can
        arrive a refresh after the screen's own Mount."""
        try:
            table = self.table
            steps, logs = self.step_list, self.log_panes
        except NoMatches:
            self.call_after_refresh(self._when_ready)
            return
        table.add_column("", key="check", width=3)
        table.add_column("Kind", key="kind")
        table.add_column("Name", key="name")
        table.add_column("State", key="state")
        table.add_column("Cost", key="cost")
        table.add_column("Detail", key="detail")
        self.monitor = RunMonitor(self, steps, logs, worker_name="cleanup-runner")
        if self.deployment:
            self.load()
        else:
            self.pick()

    # -- choosing a deployment -----------------------------------------------------------------------

    def pick(self) -> None:
        self.state = "picking"
        self.query_one(ContentSwitcher).current = "cleanup-picker"
        self._update_header("Looking for deployments (ledger and tags)…")
        self._list_worker()

    @work(thread=True, exclusive=True, group="cleanup-list", exit_on_error=False)
    def _list_worker(self) -> None:
        lister = self._list_deployments
        try:
            if lister is None:
                from ..commands.cleanup import all_deployments

                found, notes = all_deployments()
            else:
                found, notes = lister()
        except Exception as err:  # noqa: BLE001 - shown, never a traceback
            found, notes = {}, [redact(str(err))]
        self.post_message(self.DeploymentsListed(found, notes))

    @on(DeploymentsListed)
    def _listed(self, message: DeploymentsListed) -> None:
        picker = self.query_one("#cleanup-picker", OptionList)
        picker.clear_options()
        for name, (region, source) in message.deployments.items():
            picker.add_option(Option(f"{name}  ({region}, from {source})", id=name))
        if not message.deployments:
            picker.add_option(Option("No deployment is known here or carries our tag.", disabled=True))
        for note in message.notes:
            picker.add_option(Option(f"note: {note}", disabled=True))
        if message.deployments:
            picker.highlighted = 0
        picker.focus()
        self._update_header("Which deployment? enter to choose")

    @on(OptionList.OptionSelected, "#cleanup-picker")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._deployment = event.option.id
            self.load()

    # -- the inventory -------------------------------------------------------------------------------

    def load(self) -> None:
        self.state = "loading"
        self.query_one(ContentSwitcher).current = "cleanup-list-pane"
        self.table.clear()
        self.table.loading = True
        self._update_header(f"Looking for what {self.deployment} created…")
        self._load_worker(str(self.deployment))

    @work(thread=True, exclusive=True, group="cleanup-load", exit_on_error=False)
    def _load_worker(self, deployment: str) -> None:
        try:
            if self._session_factory is not None:
                session = self._session_factory(deployment)
            else:
                from ..commands.cleanup import open_session

                session = open_session(deployment)
        except Exception as err:  # noqa: BLE001
            self.post_message(self.Loaded(None, redact(str(err)), getattr(err, "fix", None)))
            return
        self.post_message(self.Loaded(session))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.table.loading = False
        if message.session is None:
            self.state = "listing"
            self.error = message.error
            self.query_one("#cleanup-notes", Static).update(
                Text(f"Could not look: {message.error}" + (f" — {message.fix}" if message.fix else "")))
            self._update_header()
            return
        self.session = message.session
        self.inventory = message.session.inventory
        self.checked = {i.key for i in self.inventory.live()}
        self.state = "listing"
        self._fill_table()
        self.table.focus()
        self._update_header()

    def _fill_table(self) -> None:
        table = self.table
        table.clear()
        assert self.inventory is not None
        for item in self.inventory.items:
            table.add_row(*self._cells(item), key="|".join(item.key))
        notes = list(self.inventory.notes)
        if not self.inventory.items:
            notes.insert(0, f"Nothing of {self.inventory.deployment} was found: there is nothing to clean up.")
        self.query_one("#cleanup-notes", Static).update(Text("\n".join(notes)))

    def _cells(self, item: InventoryItem) -> tuple[Any, ...]:
        if item.state == "gone":
            box = Text(" – ", style="dim")
        else:
            box = Text("[x]" if item.key in self.checked else "[ ]", style="bold" if item.key in self.checked else "")
        state = Text(STATE_TEXT.get(item.state, item.state),
                     style={"exists": "", "gone": "dim", "ledger-only": "italic"}.get(item.state, ""))
        cost = format_cost(item.cost_per_hour) if item.state == "exists" else ""
        return (box, kind_title(item.kind), item.ref.display_name, state, cost, item.detail)

    def _item_at_cursor(self) -> InventoryItem | None:
        if self.inventory is None or not self.inventory.items or self.table.row_count == 0:
            return None
        row = self.table.cursor_row
        if row < 0 or row >= len(self.inventory.items):
            return None
        key = self.table.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value
        return next((i for i in self.inventory.items if "|".join(i.key) == key), None)

    def _refresh_row(self, item: InventoryItem) -> None:
        self.table.update_cell("|".join(item.key), "check", self._cells(item)[0])

    # -- keys ----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        listing = self.state == "listing" and self.inventory is not None
        if action in ("toggle_row", "toggle_all", "proceed"):
            return listing
        if action == "reload":
            return self.state in ("listing", "done", "failed", "cancelled")
        if action == "follow":
            return self.state in ("running", "stopping", "done", "failed", "cancelled")
        return True

    def action_toggle_row(self) -> None:
        item = self._item_at_cursor()
        if item is None or item.state == "gone":
            return
        if item.key in self.checked:
            self.checked.discard(item.key)
        else:
            self.checked.add(item.key)
        self._refresh_row(item)
        self._update_header()

    def action_toggle_all(self) -> None:
        if self.inventory is None:
            return
        live = {i.key for i in self.inventory.live()}
        self.checked = set() if live <= self.checked else live
        for item in self.inventory.live():
            self._refresh_row(item)
        self._update_header()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_proceed()

    def action_proceed(self) -> None:
        if self.inventory is None or self.state != "listing":
            return
        selected = [i for i in self.inventory.live() if i.key in self.checked]
        if not selected:
            if self.inventory.gone():
                self.start_run()  # only the ledger to bring up to date: nothing is deleted
                return
            self.notify("Nothing is checked: check what to delete with space (or a for all).", severity="warning")
            return
        deployment = self.inventory.deployment
        cost = sum(i.cost_per_hour or 0.0 for i in selected if i.state == "exists")
        lines = [f"{len(selected)} resource(s) of {deployment} will be deleted, in dependency order"
                 + (f" (about {format_cost(cost)} now)" if cost else "") + "."]
        kept = len(self.inventory.live()) - len(selected)
        if kept:
            lines.append(f"{kept} unchecked resource(s) stay.")
        for warning in selection_warnings(self.inventory, self.checked):
            lines.append(f"⚠ {warning}")
        self.app.push_screen(
            ConfirmDialog(f"Delete what {deployment} created?", "\n".join(lines), confirm_label="Delete",
                          cancel_label="Keep", require_text=deployment, destructive=True),
            self._confirmed,
        )

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self.start_run()

    # -- running -------------------------------------------------------------------------------------

    def start_run(self) -> None:
        if self.session is None or self.inventory is None:
            return
        selected = [i.key for i in self.inventory.live() if i.key in self.checked]
        try:
            runner = self.session.runner(selected=selected, pacing=self._pacing)
        except Exception as err:  # noqa: BLE001
            self.notify(redact(f"Cannot start the cleanup: {err}"), severity="error")
            return
        self.runner = runner
        self.state = "running"
        self.started_at = self.clock()
        self.finished_at = None
        self.left_after = None
        self.query_one(ContentSwitcher).current = "cleanup-run"
        self._show_result(None, "")
        self.monitor.start(runner)
        self.step_list.focus()
        self.refresh_bindings()
        self._update_header()

    @on(RunEvent)
    def _on_run_event(self, message: RunEvent) -> None:
        if not self.monitor.apply(message):
            return
        if isinstance(message.event, RunFinished):
            self._finished(message.event)
        self._update_header()

    def _finished(self, event: RunFinished) -> None:
        self.finished_at = self.clock()
        if event.ok:
            self.state = "done"
            self._show_result(Result("✔ Deleted", "bold green", "checking that nothing is left…"), "done")
            self._verify_worker()
        elif event.cancelled or self.state == "stopping":
            self.state = "cancelled"
            result = Result("■ Stopped at a safe point", "bold yellow", "what was deleted is in the ledger")
            result.keys("r look again and resume · escape back")
            self._show_result(result, "cancelled")
        else:
            self.state = "failed"
            self._show_result(self._failure_result(), "failed")
        self.refresh_bindings()

    def _failure_result(self) -> Result:
        result = Result("✗ Cleanup did not finish", "bold red", "what is gone is in the ledger")
        runner = self.runner
        report = getattr(runner, "report", None)
        for step in (report.failed() if report is not None else []):
            result.row(step.step_id, redact(step.error or "failed"))
            if step.fix:
                result.row("by hand", redact(step.fix))
        blocked = [s.step_id for s in (report.steps.values() if report is not None else []) if s.status == "blocked"]
        if blocked:
            result.row("not run", ", ".join(blocked) + " (they wait on the failure)")
        result.keys("r look again and retry (it resumes) · escape back")
        return result

    @work(thread=True, exclusive=True, group="cleanup-verify", exit_on_error=False)
    def _verify_worker(self) -> None:
        deployment = str(self.deployment)
        try:
            if self._session_factory is not None:
                session = self._session_factory(deployment)
            else:
                from ..commands.cleanup import open_session

                session = open_session(deployment)
        except Exception as err:  # noqa: BLE001
            self.post_message(self.Verified([], None, redact(str(err))))
            return
        selected = set(self.checked)
        left = [i for i in session.inventory.live() if i.key in selected]
        self.post_message(self.Verified(left, session.inventory, None))

    @on(Verified)
    def _verified(self, message: Verified) -> None:
        self.left_after = message.left
        if message.error:
            result = Result("✔ Deleted", "bold green", f"could not check again: {message.error}")
        elif message.left:
            inv = message.inventory
            result = Result("⚠ Deleted, but some are still there", "bold yellow")
            for item in message.left:
                result.row(kind_title(item.kind), item.ref.display_name)
                if inv is not None:
                    result.row("by hand", manual_command(item.ref, inv.region, inv.cluster_name))
            self.state = "failed"
            result.keys("r look again · escape back")
            self._show_result(result, "failed")
            self._update_header()
            return
        else:
            kept = len(self.inventory.live()) - len(self.checked) if self.inventory else 0
            result = Result("✔ Everything checked is gone", "bold green",
                            f"{kept} resource(s) kept" if kept > 0 else "nothing of the deployment is left")
        result.keys("r look again · escape back")
        self._show_result(result, "done")

    def _show_result(self, result: Result | None, kind: str) -> None:
        box = self.query_one("#cleanup-result", Vertical)
        text = self.query_one("#cleanup-result-text", Static)
        for k in ("done", "failed", "cancelled"):
            box.set_class(k == kind, f"-{k}")
        box.set_class(result is not None, "-shown")
        text.update(result.renderable() if result is not None else "")
        self.result_text = result.plain() if result is not None else ""

    # -- header --------------------------------------------------------------------------------------

    def header_text(self) -> str:
        inv = self.inventory
        deployment = self.deployment or "?"
        state = {
            "picking": "choose a deployment", "loading": "looking…", "listing": "review what goes",
            "running": "deleting", "stopping": "stopping at a safe point…", "done": "done",
            "failed": "FAILED", "cancelled": "stopped",
        }.get(self.state, self.state)
        parts = [f"Clean up {deployment}: {state}"]
        if inv is not None:
            parts.append(inv.region or "?")
            parts.append(f"cluster {inv.cluster_state}")
            if self.state == "listing":
                live = inv.live()
                checked = [i for i in live if i.key in self.checked]
                parts.append(f"{len(checked)}/{len(live)} checked")
                cost = inv.cost_per_hour()
                if cost:
                    parts.append(f"≈ {format_cost(cost)} while it exists")
                if inv.gone():
                    parts.append(f"{len(inv.gone())} already gone")
                steps = plan_deletion(inv, self.checked)
                parts.append(f"{len(steps)} steps")
        if self.started_at is not None and self.state not in ("listing", "loading"):
            elapsed = (self.finished_at or self.clock()) - self.started_at
            parts.append(f"elapsed {format_elapsed(elapsed)}")
        return " · ".join(parts)

    def _update_header(self, text: str | None = None) -> None:
        if not self.is_mounted:
            return
        header = self.query_one("#cleanup-header", Static)
        header.update(Text(text or self.header_text()))
        header.set_class(self.state == "failed", "-failed")
        header.set_class(self.state == "done", "-done")

    # -- leaving and reloading -----------------------------------------------------------------------

    def action_reload(self) -> None:
        if self.state in ("running", "stopping"):
            return
        self.load()

    def action_follow(self) -> None:
        self.monitor.follow_run()

    @on(StepList.StepSelected)
    def _step_selected(self, message: StepList.StepSelected) -> None:
        self.monitor.step_selected(message)

    async def action_back(self) -> None:
        if self.state in ("running", "stopping"):
            self.app.push_screen(
                ConfirmDialog("Stop the cleanup?", "It stops at a safe point; running the cleanup again "
                              "finishes it.", confirm_label="Stop", cancel_label="Keep going"),
                self._stop_confirmed,
            )
            return
        await self._leave()

    def _stop_confirmed(self, yes: bool | None) -> None:
        if yes and self.state == "running":
            self.state = "stopping"
            self.monitor.cancel()
            self._update_header()

    async def _leave(self) -> None:
        app: App[Any] = self.app
        if len(app.screen_stack) <= 1:
            app.exit()
            return
        await app.pop_screen()
        if app.uninstall_screen(self) is not None:
            install(app)  # a fresh screen next time (the installed one would come back as it was)
            await self.remove()

    def on_unmount(self) -> None:
        if self.runner is not None and self.state in ("running", "stopping"):
            self.monitor.cancel()


def install(app: App[Any]) -> None:
    """Install the screen under "cleanup" (a factory: each push starts afresh, for `app.cleanup_deployment`)."""
    if not app.is_screen_installed(SCREEN_NAME):
        app.install_screen(CleanupScreen, SCREEN_NAME)  # type: ignore[arg-type]
