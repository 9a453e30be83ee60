"""Screen 1 — welcome and preflight: who you are in AWS, the tools found, deployments this machine knows,
and what to do next (continue the draft, a new plan, resume or clean up, the sandbox, plan-only)."""

from __future__ import annotations

import re

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, Static

from ..core.errors import PlanError, WizardError
from ..core.paths import known_deployments
from ..core.redact import redact
from ..tui import backend
from ..tui.answers import SCREEN_TITLES, Answers
from ..tui.messages import DeploymentInfo, LoadFailed, SandboxReady, WelcomeLoaded
from ..tui.widgets.choice_table import ChoiceRow, ChoiceTable
from .base import WizardScreen

# The first screen: everything heavy (the plan model, the catalog, boto3) loads in its worker, after the
# screen is drawn. So the deployment-name rule is repeated here: the same pattern as core.plan.NAME_RE
# (a test keeps them equal; the plan checks it again).
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$")


def free_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


class WelcomeScreen(WizardScreen):
    step = "welcome"
    heading = "Deploy NVIDIA Dynamo on Amazon EKS Auto Mode — and take it all down again"

    def __init__(self) -> None:
        super().__init__()
        self.loaded: WelcomeLoaded | None = None
        self.deployments: list[DeploymentInfo] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="identity", classes="facts")
        yield Static("", id="tools", classes="facts")
        with Horizontal(id="name-row"):
            yield Label("Deployment name ", classes="field-label")
            yield Input(self.wizard.answers.deployment, id="deployment", max_length=31,
                        tooltip="Names the cluster and tags everything the wizard creates")
        yield ChoiceTable(["What next", "Details"], reason_column="", id="actions")

    def on_mount(self) -> None:
        self.query_one("#actions", ChoiceTable).focus()
        self.query_one("#actions", ChoiceTable).loading = True
        self.call_after_refresh(self.load)  # draw first, then look things up

    # Loading ---------------------------------------------------------------------------------------

    def load(self, refresh_draft: bool = False) -> None:
        self.query_one("#actions", ChoiceTable).loading = True
        what = "the sandbox" if self.wizard.mode == "sandbox" else "AWS"
        if self.wizard.mode == "plan-only":
            self.set_status("Plan-only mode: nothing is checked against AWS.", "info")
        else:
            self.set_status(f"Checking who you are in {what} and which tools are installed…", "loading")
        self._load_worker(refresh_draft)

    @work(thread=True, exclusive=True, group="welcome-load", name="welcome-load")
    def _load_worker(self, refresh_draft: bool = False) -> None:
        self.wizard.load_draft(refresh=refresh_draft)
        identity, error, fix = None, "", ""
        if self.wizard.mode != "plan-only":
            try:
                identity = self.wizard.discovery().identity()
            except WizardError as err:
                error, fix = redact(err.message), err.fix
            except Exception as err:  # noqa: BLE001 - any failure means "no usable credentials": say why
                error = redact(f"{type(err).__name__}: {err}")
                fix = "configure AWS credentials (aws configure / aws sso login), or use the sandbox or plan-only mode"
        try:
            tools = backend.check_tools()
            deployments = backend.deployments_info()
        except Exception as err:  # noqa: BLE001
            self.post_message(LoadFailed("tools and deployments", redact(str(err))))
            tools, deployments = [], []
        self.post_message(WelcomeLoaded(identity, error, fix, tools, deployments))

    def loading_done(self) -> None:
        self.query_one("#actions", ChoiceTable).loading = False

    def on_welcome_loaded(self, message: WelcomeLoaded) -> None:
        self.loaded = message
        self.deployments = message.deployments
        self.loading_done()
        self._show_identity(message)
        self._show_tools(message)
        taken = set(known_deployments())
        name_input = self.query_one("#deployment", Input)
        if name_input.value in taken and not self.wizard.started_from_plan:
            name_input.value = free_name(name_input.value, taken)
        self._show_actions()
        if message.identity is None and self.wizard.mode == "aws":
            self.set_status("No AWS credentials: use the sandbox or plan-only mode, or configure AWS and restart.",
                            "warning")
        elif self.wizard.draft_error:
            self.set_status(f"The saved draft cannot be used: {self.wizard.draft_error}", "warning")
        else:
            self.set_status("Enter accepts the highlighted choice.", "ok")

    def _show_identity(self, m: WelcomeLoaded) -> None:
        widget = self.query_one("#identity", Static)
        if self.wizard.mode == "plan-only":
            widget.update(Text("AWS: not used (plan-only mode)"))
        elif m.identity is not None:
            profile = f" · profile {m.identity.profile}" if m.identity.profile else ""
            where = "sandbox" if self.wizard.mode == "sandbox" else "AWS"
            widget.update(Text(f"{where}: account {m.identity.account} · {m.identity.arn}{profile}"))
        else:
            fix = f" — {m.identity_fix}" if m.identity_fix else ""
            widget.update(Text(f"AWS: no usable credentials ({m.identity_error}){fix}"))
        widget.set_class(m.identity is None and self.wizard.mode == "aws", "-problem")

    def _show_tools(self, m: WelcomeLoaded) -> None:
        parts = []
        for t in m.tools:
            if t.ok:
                parts.append(f"{t.name} ✓ {t.version or ''}".rstrip())
            else:
                parts.append(f"{t.name} ✗ {t.message}")
        text = "Tools: " + (" · ".join(parts) if parts else "not checked")
        widget = self.query_one("#tools", Static)
        widget.update(Text(text))
        widget.set_class(any(not t.ok for t in m.tools), "-problem")

    def _show_actions(self) -> None:
        rows: list[ChoiceRow] = []
        wiz = self.wizard
        no_aws = self.loaded is not None and self.loaded.identity is None and wiz.mode == "aws"
        no_aws_reason = "no AWS credentials; use the sandbox or plan-only mode"
        highlight = "new"
        if wiz.draft is not None:
            a = wiz.draft.answers
            nxt = SCREEN_TITLES.get(wiz.draft.next_screen, wiz.draft.next_screen)
            rows.append(ChoiceRow("continue", ("Continue your plan",
                                              f"{a.deployment}: {a.region}, {a.instance_type}, {a.mode}, {a.model} — next: {nxt}"),
                                  available=not no_aws, reason=no_aws_reason if no_aws else ""))
            highlight = "continue"
        source = "from the plan file" if wiz.started_from_plan else "from the defaults"
        rows.append(ChoiceRow("new", ("Plan a new deployment", f"starting {source}; Enter on every screen makes a working plan"),
                              available=not no_aws, reason=no_aws_reason if no_aws else ""))
        for d in self.deployments:
            kinds = ", ".join(d.kinds[:4]) + ("…" if len(d.kinds) > 4 else "")
            live = f"{d.live_resources} resource{'' if d.live_resources == 1 else 's'} live" + (f" ({kinds})" if kinds else "")
            rows.append(ChoiceRow(f"resume:{d.name}", (f"Resume {d.name}", live),
                                  available=d.plan_path is not None,
                                  reason="" if d.plan_path else "no plan was kept for it"))
            rows.append(ChoiceRow(f"cleanup:{d.name}", (f"Clean up {d.name}", f"delete what it created — {live}")))
        if wiz.mode != "sandbox":
            rows.append(ChoiceRow("sandbox", ("Use the sandbox", "simulated AWS and cluster on this machine; nothing is billed")))
        if wiz.mode != "plan-only":
            rows.append(ChoiceRow("plan-only", ("Plan only", "no AWS account needed; write a plan, apply it later")))
        if no_aws and highlight in ("new", "continue"):
            highlight = "sandbox"
        self.query_one("#actions", ChoiceTable).set_rows(rows, highlight=highlight)

    # Choosing --------------------------------------------------------------------------------------

    def _deployment_name(self) -> str | None:
        name = self.query_one("#deployment", Input).value.strip()
        if not NAME_RE.fullmatch(name):
            self.refuse(f"Deployment name {name!r} is not valid: a lowercase letter, then lowercase letters, "
                        "digits or '-', not ending in '-', at most 31 characters (e.g. ai-dynamo).")
            self.query_one("#deployment", Input).focus()
            return None
        return name

    @on(Input.Submitted, "#deployment")
    def _name_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        table = self.query_one("#actions", ChoiceTable)
        key = table.highlighted_key
        row = table.row(key)
        if row is None:
            self.refuse("Still checking AWS; wait a moment.")
        elif not row.available:
            self.refuse(row.reason)
        else:
            self.choose(row.key)

    @on(ChoiceTable.Chosen, "#actions")
    def _chosen(self, event: ChoiceTable.Chosen) -> None:
        self.choose(event.key)

    @on(ChoiceTable.Refused, "#actions")
    def _refused(self, event: ChoiceTable.Refused) -> None:
        self.refuse(f"Not available: {event.reason}")

    def choose(self, key: str) -> None:
        wiz = self.wizard
        if key in ("new", "continue", "plan-only"):
            name = self._deployment_name()
            if name is None:
                return
            if key == "new" and name in known_deployments():
                self.refuse(f"A deployment named {name} exists on this machine: choose another name, or resume it.")
                self.query_one("#deployment", Input).focus()
                return
        if key == "continue" and wiz.draft is not None:
            wiz.answers = wiz.draft.answers.copy(deployment=self._deployment_name() or wiz.draft.answers.deployment)
            wiz.jump_to(wiz.draft.next_screen)
        elif key == "new":
            base = wiz.answers if wiz.started_from_plan else Answers()
            wiz.answers = base.copy(deployment=name)
            wiz.advance(self.step)
        elif key == "plan-only":
            from ..tui.offline import PlanOnlyDiscovery

            wiz.use_backend("plan-only", PlanOnlyDiscovery(wiz.catalog))
            base = wiz.answers if wiz.started_from_plan else Answers()
            wiz.answers = base.copy(deployment=name)
            self.query_one("#mode-banner").set_mode("plan-only")  # type: ignore[attr-defined]
            wiz.advance(self.step)
        elif key == "sandbox":
            self.set_status("Starting the sandbox (simulated AWS on 127.0.0.1)…", "loading")
            self.query_one("#actions", ChoiceTable).loading = True
            self._sandbox_worker()
        elif key.startswith("resume:"):
            self._resume(key.split(":", 1)[1])
        elif key.startswith("cleanup:"):
            wiz.start_cleanup(key.split(":", 1)[1])

    def _resume(self, name: str) -> None:
        info = next((d for d in self.deployments if d.name == name), None)
        if info is None:
            return
        try:
            plan = backend.deployment_plan(info)
        except PlanError as err:
            self.refuse(f"The kept plan of {name} cannot be read: {'; '.join(err.lines())}")
            return
        self.wizard.resume_deployment(name, plan)

    @work(thread=True, exclusive=True, group="sandbox", name="sandbox-activate")
    def _sandbox_worker(self) -> None:
        try:
            env = self.wizard.activate_sandbox()
        except Exception as err:  # noqa: BLE001 - show why the sandbox did not start; stay on this screen
            self.post_message(LoadFailed("the sandbox", redact(f"{type(err).__name__}: {err}"),
                                         "see `dynamo-wizard sandbox status`"))
            return
        self.post_message(SandboxReady(env.get("AWS_ENDPOINT_URL", "")))

    def on_sandbox_ready(self, message: SandboxReady) -> None:
        wiz = self.wizard
        wiz.use_backend("sandbox", None)
        self.query_one("#mode-banner").set_mode("sandbox")  # type: ignore[attr-defined]
        self.load(refresh_draft=True)  # the sandbox keeps its own state directory (and drafts)
