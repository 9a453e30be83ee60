"""Screen 6 — review: the plan, every rendered file (syntax-highlighted), the hourly cost, the preflight
verdicts with their fixes, warnings; export to a directory; confirm. Nothing is created before confirm."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane

from ..core.errors import PlanError
from ..core.plan import Plan
from ..core.redact import redact
from ..tui import backend
from ..tui.messages import Exported, LoadFailed, ReviewData, ReviewLoaded
from ..tui.widgets.confirm import ConfirmDialog
from ..tui.widgets.dialogs import PromptDialog
from ..tui.widgets.file_viewer import FileViewer, ViewedFile
from ..tui.widgets.syntax_view import SyntaxView
from .base import WizardScreen


def default_export_dir(deployment: str) -> str:
    return f"./dynamo-wizard-{deployment}"


class ReviewScreen(WizardScreen):
    step = "review"
    heading = "Review — nothing has been created yet"
    BINDINGS = [
        Binding("enter", "confirm", "Create…", priority=False),
        Binding("c", "confirm", "Create…", show=False),
        Binding("e", "export", "Export"),
        Binding("s", "tab('summary')", "Summary", show=False),
        Binding("f", "tab('files')", "Files"),
        Binding("p", "tab('plan')", "Plan", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.plan: Plan | None = None
        self.review: ReviewData | None = None

    def compose_body(self) -> ComposeResult:
        with TabbedContent(initial="summary", id="review-tabs"):
            with TabPane("Summary", id="summary"):
                with VerticalScroll(id="summary-scroll"):
                    yield Static("", id="review-plan", classes="review-section")
                    yield Static("", id="review-cost", classes="review-section")
                    yield Static("", id="review-problems", classes="review-section -problems")
                    yield Static("", id="review-verdicts", classes="review-section")
                    yield Static("", id="review-warnings", classes="review-section -warnings")
                    yield Static("", id="review-notes", classes="review-section -notes")
            with TabPane("Files", id="files"):
                yield FileViewer(id="review-files")
            with TabPane("Plan", id="plan"):
                yield SyntaxView(id="review-plan-yaml")

    def on_mount(self) -> None:
        try:
            self.plan = self.wizard.answers.to_plan()
        except PlanError as err:
            self.set_status("The plan is not valid: " + "; ".join(err.lines()) + " — Esc to change it.", "error")
            return
        self.query_one("#summary-scroll").focus()
        self.query_one("#summary-scroll").loading = True
        self.set_status("Rendering every file, checking the rules, running preflight…", "loading")
        self._show_plan(self.plan)
        self._load_worker(self.plan)

    @work(thread=True, exclusive=True, group="review-load", name="review-load")
    def _load_worker(self, plan: Plan) -> None:
        wiz = self.wizard
        try:
            review = backend.build_review(
                plan, catalog=wiz.catalog, mode=wiz.mode, now=wiz.now(), identity_of=lambda: wiz.discovery().identity(),
                summary_of=wiz.load_region_summary, reservations_of=wiz.load_reservations)
        except Exception as err:  # noqa: BLE001 - the screen stays usable; say what failed
            self.post_message(LoadFailed("the review", redact(f"{type(err).__name__}: {err}"), "Esc, then try again"))
            return
        self.post_message(ReviewLoaded(review))

    def loading_done(self) -> None:
        self.query_one("#summary-scroll").loading = False

    # Showing ---------------------------------------------------------------------------------------

    def _show_plan(self, plan: Plan) -> None:
        s = plan.serving
        workers = ", ".join(f"{role} {w.replicas} × {w.gpus} GPU (TP {w.tensor_parallel})"
                            for role, w in s.workers().items())
        if plan.reservation is None:
            capacity = f"no reservation; {' + '.join(plan.gpu.capacity_types)}"
        else:
            what = [*plan.reservation.ids, *(f"{k}={v}" for k, v in plan.reservation.tags.items())]
            capacity = f"reserved: {', '.join(what)}; fallback {plan.reservation.fallback}"
        lines = [
            ("Deployment", f"{plan.deployment} (cluster {plan.cluster_name}, Kubernetes {plan.cluster.kubernetes_version})"),
            ("Region", f"{plan.region} · zones {', '.join(plan.zones) or 'chosen by eksctl'}"),
            ("GPU NodePool", f"families {', '.join(plan.gpu.families)}"),
            ("Capacity", capacity),
            ("Serving", f"{s.mode.value} on {s.instance_type} · {workers}"),
            ("Model", s.model),
            ("Dynamo", f"{plan.dynamo.release} in namespace {plan.namespace}"),
        ]
        self.query_one("#review-plan", Static).update(self._table(lines))
        self.query_one("#review-plan-yaml", SyntaxView).show(plan.to_yaml(), "yaml")

    def _table(self, lines: list[tuple[str, str]]) -> Text:
        text = Text()
        for i, (k, v) in enumerate(lines):
            if i:
                text.append("\n")
            text.append(f"{k:<18}", style="bold")
            text.append(v)
        return text

    def _style(self, variable: str) -> str:
        return self.app.theme_variables.get(variable, "")

    def on_review_loaded(self, message: ReviewLoaded) -> None:
        self.loading_done()
        if self.query_one("#review-tabs", TabbedContent).active == "summary":
            self.query_one("#summary-scroll").focus()  # the loading overlay may have moved focus to the tabs
        r = message.review
        self.review = r
        self.query_one("#review-cost", Static).update(self._table(r.cost_lines) if r.cost_lines else "")
        ok, bad, warn = self._style("success"), self._style("error"), self._style("warning")
        problems = Text()
        if r.problems:
            problems.append("Must be fixed before anything is created:\n", style=f"bold {bad}")
            problems.append("\n".join(f"✗ {p}" for p in r.problems))
        self.query_one("#review-problems", Static).update(problems)
        verdicts = Text()
        if r.verdicts:
            verdicts.append("Preflight\n", style="bold")
            for i, v in enumerate(r.verdicts):
                if i:
                    verdicts.append("\n")
                if v.ok:
                    verdicts.append("✓ ", style=ok)
                elif v.severity == "error":
                    verdicts.append("✗ ", style=bad)
                else:
                    verdicts.append("! ", style=warn)
                verdicts.append(f"{v.check}: {redact(v.detail)}")
                if not v.ok and v.fix:
                    verdicts.append(f"\n  fix: {v.fix}", style="italic")
        self.query_one("#review-verdicts", Static).update(verdicts)
        warnings = Text()
        if r.warnings:
            warnings.append("Warnings\n", style=f"bold {warn}")
            warnings.append("\n".join(f"! {w}" for w in r.warnings))
        self.query_one("#review-warnings", Static).update(warnings)
        self.query_one("#review-notes", Static).update(Text("\n".join(f"· {n}" for n in r.notes)))
        for section, content in (("#review-cost", r.cost_lines), ("#review-problems", r.problems),
                                 ("#review-verdicts", r.verdicts), ("#review-warnings", r.warnings),
                                 ("#review-notes", r.notes)):
            self.query_one(section, Static).display = bool(content)
        self.query_one("#review-files", FileViewer).set_files([ViewedFile(p, t) for p, t in r.files])
        blocking = self.blocking()
        if blocking:
            self.set_status(f"{len(blocking)} problem(s) must be fixed first (Esc goes back). e exports anyway.",
                            "error")
        elif self.wizard.mode == "plan-only":
            self.set_status(f"The plan is valid: {len(r.files)} files. e exports the plan and files; f shows them.",
                            "ok")
        else:
            cost = f" at about ${r.hourly_cost:,.2f}/h" if r.hourly_cost is not None else ""
            self.set_status(f"The plan is valid: {len(r.files)} files. Enter creates it{cost}; e exports; "
                            "f shows the files.", "ok")

    def blocking(self) -> list[str]:
        if self.review is None:
            return []
        failed = [f"{v.check}: {v.detail}" for v in self.review.verdicts if not v.ok and v.severity == "error"]
        return list(self.review.problems) + failed

    # Actions ---------------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one("#review-tabs", TabbedContent).active = tab

    def action_confirm(self) -> None:
        if self.plan is None:
            self.refuse("The plan is not valid; Esc to change it.")
            return
        if self.review is None:
            self.refuse("Still checking the plan; wait a moment.")
            return
        blocking = self.blocking()
        if blocking:
            self.refuse("Cannot create: " + redact(blocking[0]) + (f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""))
            return
        plan = self.plan
        hourly = self.review.hourly_cost
        cost = f"about ${hourly:,.2f} per hour" if hourly is not None else "an unknown hourly cost"
        if self.wizard.mode == "sandbox":
            where, bill = "in the sandbox", f"Nothing is billed (on AWS: {cost})."
        else:
            where, bill = f"in {plan.region}", f"It costs {cost} until you clean up."
        message = (f"This creates the EKS Auto Mode cluster {plan.cluster_name} {where}, EFS, the Dynamo platform "
                   f"and the {plan.serving.mode.value} graph serving {plan.serving.model} on "
                   f"{plan.serving.instance_type}. {bill}")
        if self.wizard.mode == "plan-only":
            self.refuse("Plan-only mode creates nothing: e exports the plan; apply it later with "
                        "`dynamo-wizard apply plan.yaml`.")
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                try:
                    backend.keep_confirmed_plan(plan)
                except OSError as err:
                    self.refuse(f"Could not keep the plan beside its ledger: {err}")
                    return
                self.wizard.start_provisioning(plan)

        self.app.push_screen(ConfirmDialog("Create the deployment?", message, confirm_label="Create",
                                           cancel_label="Not yet"), done)

    def action_export(self) -> None:
        if self.plan is None:
            self.refuse("The plan is not valid; Esc to change it.")
            return
        plan = self.plan

        def check(value: str) -> str | None:
            if not value:
                return "Give a directory."
            p = Path(value).expanduser()
            if p.exists() and not p.is_dir():
                return f"{p} exists and is not a directory."
            return None

        def chosen(value: str | None) -> None:
            if value:
                self.set_status(f"Exporting to {value}…", "loading")
                self._export_worker(plan, value)

        self.app.push_screen(PromptDialog(
            "Export the plan and every rendered file to:", default_export_dir(plan.deployment),
            help_text="plan.yaml plus the eksctl config, NodePools, StorageClasses, PVCs, helm values, the download "
                      "Job and the DynamoGraphDeployment. Files of the same names are replaced.",
            validate=check), chosen)

    @work(thread=True, exclusive=True, group="review-export", name="review-export")
    def _export_worker(self, plan: Plan, directory: str) -> None:
        try:
            written = backend.export_plan(plan, directory, self.wizard.catalog)
        except (OSError, PlanError) as err:
            self.post_message(LoadFailed("the export", redact(str(err)), "choose another directory (e)"))
            return
        self.post_message(Exported(Path(directory).expanduser().resolve(), written))

    def on_exported(self, message: Exported) -> None:
        self.wizard.last_export = message.directory / "plan.yaml"
        self.set_status(f"Exported {len(message.files)} files to {message.directory}.", "ok")
        self.app.notify(f"{len(message.files)} files in {message.directory}", title="Exported")

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "files":
            self.query_one("#file-list").focus()
