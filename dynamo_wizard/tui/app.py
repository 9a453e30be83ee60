"""WizardApp: the full-screen wizard, from welcome to a reviewed plan (and on to provisioning).

The backends come in through the constructor (a Discovery or a factory making one, the catalog, the
clock), so tests and the sandbox drive the same code as real AWS. boto3 and kubernetes are never imported
here: the default discovery factory imports `dynamo_wizard.cloud.aws` the first time a worker needs it.

Cold start: only Textual, this module and the welcome screen load before the first screen is drawn. The
plan model (pydantic), the catalog (YAML), the other screens and everything cloud load later, in workers
or when first used.
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from ..core.errors import PlanError
from ..core.paths import logs_dir, state_dir
from ..core.redact import redact, register_secret
from .answers import SCREENS, Answers, Draft, discard_draft, load_draft, save_draft

if TYPE_CHECKING:
    from ..core.catalog import Catalog
    from ..core.inventory import CapacityReservation, Discovery, RegionSummary
    from ..core.plan import Plan

STYLESHEET = Path(__file__).resolve().parent.parent / "assets" / "wizard.tcss"
DiscoveryFactory = Callable[[], "Discovery"]
Mode = str  # "aws" | "sandbox" | "plan-only"


def default_discovery_factory() -> Discovery:
    """Live AWS (or the sandbox, when its endpoint is in the environment): imported on first use only."""
    aws = importlib.import_module("dynamo_wizard.cloud.aws")
    return aws.discovery_from_env()  # type: ignore[no-any-return]


def backend_runner_factory() -> Callable[[Plan, str | None], Any] | None:
    """`make_runner(plan, hf_token)` of the provisioning part, when this build has it."""
    from . import backend

    return backend.runner_factory()


def default_screens() -> Mapping[str, Callable[[], Screen[Any]]]:
    # Looked up by name so that tui/ does not import screens/ (screens -> tui -> core).
    return importlib.import_module("dynamo_wizard.screens").WIZARD_SCREENS  # type: ignore[no-any-return]


class WizardCommands(Provider):
    """The command palette's wizard actions."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, WizardApp)
        return [
            ("Export plan and rendered files…", "write plan.yaml and every manifest to a directory",
             app.action_export),
            ("Open the log folder", "where provisioning and cleanup logs are written", app.action_open_logs),
            ("Clean up a deployment", "delete everything a deployment created", app.action_cleanup),
            ("Help for this screen", "what this screen asks and its keys", app.action_screen_help),
            ("Discard the draft and start over", "forget the answers kept so far", app.action_start_over),
        ]

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class WizardApp(App[int]):
    """The wizard. `discovery` is a Discovery, or a zero-argument factory called (once) in a worker."""

    TITLE = "dynamo-wizard"
    SUB_TITLE = "NVIDIA Dynamo on Amazon EKS Auto Mode"
    CSS_PATH = str(STYLESHEET)
    COMMANDS = App.COMMANDS | {WizardCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        discovery: Discovery | DiscoveryFactory | None = None,
        *,
        mode: Mode = "aws",
        catalog: Catalog | None = None,
        plan: Plan | None = None,
        now: Callable[[], datetime] | None = None,
        screens: Mapping[str, Callable[[], Screen[Any]]] | None = None,
        sandbox_activate: Callable[[], dict[str, str]] | None = None,
        hf_token: str | None = None,
        use_draft: bool = True,
        runner_factory: Callable[[Plan, str | None], Any] | None = None,
        pod_watch_factory: Callable[[Plan], Callable[[str, Any, Any], None]] | None = None,
    ) -> None:
        super().__init__()
        self._discovery_factory: DiscoveryFactory = self._as_factory(discovery)
        self._discovery: Discovery | None = None
        self._discovery_lock = threading.Lock()
        self.mode: Mode = mode
        self._catalog = catalog
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self._screen_factories = screens
        self._sandbox_activate = sandbox_activate
        self._runner_factory = runner_factory
        self._pod_watch_factory = pod_watch_factory
        self.answers = Answers.from_plan(plan) if plan is not None else Answers()
        self.started_from_plan = plan is not None
        self.draft: Draft | None = None
        self.draft_error: str = ""
        self._use_draft = use_draft and plan is None
        self._draft_loaded = False
        self.hf_token = hf_token if hf_token is not None else os.environ.get("HF_TOKEN") or None
        register_secret(self.hf_token)
        self.confirmed_plan: Plan | None = None
        self.cleanup_deployment: str | None = None
        self.cleanup_requests: list[str | None] = []  # every jump to cleanup, in order
        self.last_export: Path | None = None
        # Discovery results, kept so that Back and forward again do not ask AWS twice.
        self.region_summaries: list[RegionSummary] | None = None
        self.region_notes: list[str] = []
        self._summary_cache: dict[str, RegionSummary] = {}
        self._reservation_cache: dict[str, tuple[list[CapacityReservation], list[str]]] = {}
        self._cache_lock = threading.Lock()

    # Backends --------------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The offline catalog, read on first use (a worker usually gets there first)."""
        if self._catalog is None:
            from ..core.catalog import load_catalog

            self._catalog = load_catalog()
        return self._catalog

    def load_draft(self, refresh: bool = False) -> Draft | None:
        """The kept draft (read once, in the welcome screen's worker; again after switching to the sandbox,
        whose state directory is its own)."""
        if self._use_draft and (refresh or not self._draft_loaded):
            self._draft_loaded = True
            self.draft, self.draft_error = None, ""
            try:
                self.draft = load_draft()
            except PlanError as err:
                self.draft_error = "; ".join(err.lines())
        return self.draft

    @staticmethod
    def _as_factory(discovery: Discovery | DiscoveryFactory | None) -> DiscoveryFactory:
        if discovery is None:
            return default_discovery_factory
        if hasattr(discovery, "region_summary"):
            instance = discovery
            return lambda: instance  # type: ignore[return-value]
        return discovery  # type: ignore[return-value]

    def discovery(self) -> Discovery:
        """The discovery backend, made on first use (call from a worker: it may import boto3)."""
        with self._discovery_lock:
            if self._discovery is None:
                self._discovery = self._discovery_factory()
            return self._discovery

    def use_backend(self, mode: Mode, discovery: Discovery | DiscoveryFactory | None) -> None:
        """Switch to the sandbox or plan-only mode (from the welcome screen); forget cached results."""
        with self._discovery_lock:
            self._discovery_factory = self._as_factory(discovery)
            self._discovery = None
        self.mode = mode
        with self._cache_lock:
            self.region_summaries = None
            self.region_notes = []
            self._summary_cache.clear()
            self._reservation_cache.clear()

    def activate_sandbox(self) -> dict[str, str]:
        """Start (or find) the sandbox service and point this process at it. Runs in a worker."""
        if self._sandbox_activate is not None:
            return self._sandbox_activate()
        client = importlib.import_module("dynamo_wizard.sandbox.client")
        return client.activate()  # type: ignore[no-any-return]

    @property
    def mode_banner(self) -> str | None:
        return self.mode if self.mode in ("sandbox", "plan-only") else None

    def wanted_families(self) -> list[str]:
        """The families the region screen ranks by: the guide's, plus any already chosen."""
        return list(dict.fromkeys([*self.catalog.guide_families, *self.answers.families]))

    def load_region_summaries(self, on_summary: Callable[[RegionSummary], object] | None = None,
                              on_regions: Callable[[list[str]], object] | None = None,
                              ) -> tuple[list[RegionSummary], list[str]]:
        """All regions with the catalog's families (worker thread; cached). `on_summary` is called as each
        region completes, when the discovery can report progress (AwsDiscovery can)."""
        with self._cache_lock:
            cached = self.region_summaries
            notes = list(self.region_notes)
        if cached is not None:
            if on_regions is not None:
                on_regions([s.region for s in cached])
            return cached, notes
        d = self.discovery()
        regions = d.regions()
        if on_regions is not None:
            on_regions(regions)
        families = list(self.catalog.families)
        if on_summary is not None and "on_summary" in inspect.signature(d.region_summaries).parameters:
            summaries = d.region_summaries(regions, families, on_summary=on_summary)  # type: ignore[call-arg]
        else:
            summaries = d.region_summaries(regions, families)
            for s in summaries:
                if on_summary is not None:
                    on_summary(s)
        notes = [n for s in summaries for n in s.notes]
        with self._cache_lock:
            # Not kept per region: the region screen's summaries may carry no live prices; the
            # instance screen asks for its region again (discovery caches the common parts).
            self.region_summaries = summaries
            self.region_notes = notes
        return summaries, notes

    def load_region_summary(self, region: str) -> RegionSummary:
        with self._cache_lock:
            cached = self._summary_cache.get(region)
        if cached is not None:
            return cached
        summary = self.discovery().region_summary(region, list(self.catalog.families))
        with self._cache_lock:
            self._summary_cache[region] = summary
        return summary

    def cached_region_summary(self, region: str) -> RegionSummary | None:
        with self._cache_lock:
            return self._summary_cache.get(region)

    def load_reservations(self, region: str) -> tuple[list[CapacityReservation], list[str]]:
        with self._cache_lock:
            cached = self._reservation_cache.get(region)
        if cached is not None:
            return cached
        result = self.discovery().reservations(region)
        with self._cache_lock:
            self._reservation_cache[region] = result
        return result

    def cached_reservations(self, region: str) -> list[CapacityReservation]:
        with self._cache_lock:
            cached = self._reservation_cache.get(region)
        return list(cached[0]) if cached else []

    # Screens and navigation ------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        """The welcome screen is the first screen (the bottom of the stack: Back stops there)."""
        return self.make_screen("welcome")

    def make_screen(self, step: str) -> Screen[Any]:
        factories = self._screen_factories if self._screen_factories is not None else default_screens()
        return factories[step]()

    def advance(self, step: str) -> None:
        """`step` was accepted: keep the answers, then show the next screen."""
        index = SCREENS.index(step)
        if index + 1 >= len(SCREENS):
            return
        nxt = SCREENS[index + 1]
        self.keep_draft(nxt)
        self.push_screen(self.make_screen(nxt))

    def keep_draft(self, next_screen: str) -> None:
        try:
            save_draft(self.answers, next_screen)
        except OSError as err:
            self.notify(f"Could not keep the draft: {err}", severity="warning")

    def jump_to(self, step: str) -> None:
        """Continue a draft: show `step` with the earlier screens below it, so Back walks through them."""
        index = SCREENS.index(step)
        for name in SCREENS[1: index + 1]:
            self.push_screen(self.make_screen(name))

    def go_back(self, screen: Screen[Any]) -> None:
        step = getattr(screen, "step", "")
        if len(self.screen_stack) <= 1 or step == "welcome":
            return  # the first screen: nothing behind it
        self.pop_screen()

    def show_help(self, step: str) -> None:
        help_mod = importlib.import_module("dynamo_wizard.screens.help")
        self.push_screen(help_mod.HelpScreen(step))

    # Hooks for the parts built elsewhere -----------------------------------------------------------

    def start_provisioning(self, plan: Plan) -> None:
        """The single place where a confirmed plan leaves the wizard. The provision screen (installed as
        "provision") reads `app.confirmed_plan` and `app.hf_token`."""
        self.confirmed_plan = plan
        discard_draft()
        self.draft = None
        if self._install_optional("provision") and self._runner_factory_available():
            self.push_screen("provision")
            return
        where = self.last_export or state_dir() / "deployments" / plan.deployment / "plan.yaml"
        self.notify(
            f"The plan is ready: {where}. Provisioning is not part of this build; run "
            f"`dynamo-wizard apply {where}`.",
            title="Plan confirmed",
            timeout=30,
        )

    def start_cleanup(self, deployment: str | None = None) -> None:
        """Jump to cleanup: the cleanup screen (installed as "cleanup") reads `app.cleanup_deployment`."""
        self.cleanup_deployment = deployment
        self.cleanup_requests.append(deployment)
        if self._install_optional("cleanup"):
            self.push_screen("cleanup")
            return
        target = f" --deployment {deployment}" if deployment else ""
        self.notify(f"Run `dynamo-wizard cleanup{target}` to delete what the deployment created.",
                    title="Cleanup", timeout=20)

    def _install_optional(self, name: str) -> bool:
        """Install the provision or cleanup screen on first use (kept out of the cold start)."""
        if not self.is_screen_installed(name):
            screens = importlib.import_module("dynamo_wizard.screens")
            screens.install_optional(self, (name,))
        return self.is_screen_installed(name)

    def _runner_factory_available(self) -> bool:
        if self._runner_factory is not None:
            return True
        return backend_runner_factory() is not None

    def make_runner(self, plan: Plan) -> Any:
        """The provisioning runner for a plan (the provision screen calls this, also for a retry); the HF
        token goes to the runner, never into the plan."""
        factory = self._runner_factory or backend_runner_factory()
        if factory is None:
            raise RuntimeError("provisioning is not part of this build")
        return factory(plan, self.hf_token)

    def watch_pods(self, plan: Plan, view: Any, stop: Any) -> None:
        """Follow a deployment's pods into the provision screen's table until `stop` (its worker calls this;
        the screen's PodWatch contract: (plan, view, stop))."""
        factory = self._pod_watch_factory
        if factory is None:
            apply_cmd = importlib.import_module("dynamo_wizard.commands.apply")
            factory = apply_cmd.pod_watch
        factory(plan)(plan.namespace, view, stop)

    def resume_deployment(self, deployment: str, plan: Plan | None) -> None:
        """Continue provisioning a deployment from its kept plan (steps adopt what exists), after asking."""
        if plan is None:
            self.notify(f"No plan was kept for {deployment}; plan it again, or clean it up.",
                        severity="warning")
            return
        from .widgets.confirm import ConfirmDialog

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.answers = Answers.from_plan(plan)
                self.start_provisioning(plan)

        self.push_screen(ConfirmDialog(
            f"Resume {deployment}?",
            f"Provisioning continues from the kept plan ({plan.serving.mode.value} {plan.serving.model} on "
            f"{plan.serving.instance_type} in {plan.region}); what exists is found and kept, the rest is created.",
            confirm_label="Resume", cancel_label="Not now"), done)

    # Actions (command palette) ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)

    def action_export(self) -> None:
        """Export from anywhere: the review screen's export, or the answers so far as a plan."""
        export = getattr(self.screen, "action_export", None)
        if callable(export):
            export()
            return
        try:
            plan = self.answers.to_plan()
        except PlanError as err:
            self.notify("The answers so far are not a valid plan yet: " + "; ".join(err.lines()),
                        severity="warning", timeout=15)
            return
        from .widgets.dialogs import PromptDialog

        def chosen(directory: str | None) -> None:
            if directory:
                self.run_worker(lambda: self._export(plan, directory), thread=True, name="export",
                                group="export", exit_on_error=False)

        self.push_screen(PromptDialog("Export the plan and every rendered file to:",
                                      f"./dynamo-wizard-{plan.deployment}"), chosen)

    def _export(self, plan: Plan, directory: str) -> None:
        """Worker: write the files, then report through the app's notifications (thread-safe)."""
        from . import backend

        try:
            written = backend.export_plan(plan, directory, self.catalog)
        except (OSError, PlanError) as err:
            self.call_from_thread(self.notify, f"Export failed: {redact(str(err))}", severity="error")
            return
        self.last_export = Path(directory).expanduser().resolve() / "plan.yaml"
        self.call_from_thread(self.notify, f"{len(written)} files in {Path(directory).expanduser().resolve()}",
                              title="Exported")

    def action_open_logs(self) -> None:
        path = logs_dir(self.answers.deployment)
        try:
            self.open_url(path.as_uri())
        except Exception:  # noqa: BLE001 - no browser or opener on a headless machine: the path is enough
            pass
        self.notify(f"Logs: {path}", title="Log folder", timeout=15)

    def action_cleanup(self) -> None:
        self.start_cleanup(None)

    def action_screen_help(self) -> None:
        self.show_help(getattr(self.screen, "step", ""))

    async def action_start_over(self) -> None:
        discard_draft()
        self.draft = None
        self.answers = Answers()
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        reload = getattr(self.screen, "load", None)
        if callable(reload):
            reload(refresh_draft=True)
        self.notify("The draft was discarded; starting from the defaults.")

    def notify_error(self, text: str) -> None:
        self.notify(redact(text), severity="error", timeout=15)
