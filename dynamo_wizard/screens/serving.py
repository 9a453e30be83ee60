"""Screen 5 — serving mode and model: aggregated, disaggregated over EFA (EFA types only, and it says why
not otherwise), disaggregated over TCP; a model from the catalog with its size, GPUs needed and tensor
parallel size; replicas; and a fit check before anything is paid for."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, Input, Label, Static

from ..core.catalog import InstanceType
from ..core.errors import PlanError
from ..core.plan import Mode
from ..core.redact import redact, register_secret
from ..tui.choices import (
    MODE_TITLES,
    ModelChoice,
    fit_problems,
    gpus_for,
    instance_type_info,
    mode_choices,
    model_choices,
)
from ..tui.messages import LoadFailed, RegionLoaded
from ..tui.widgets.choice_table import ChoiceRow, ChoiceTable
from .base import WizardScreen

MAX_REPLICAS = 64
MODE_CELLS = {
    Mode.AGG.value: "one worker does prefill and decode",
    Mode.DISAGG_EFA.value: "prefill/decode nodes, KV over EFA",
    Mode.DISAGG_TCP.value: "prefill/decode nodes, KV over TCP",
}


def instances_needed(mode: str, t: InstanceType, gpus: int, replicas: int, prefill: int, decode: int) -> int:
    """Nodes the workers need: agg workers pack onto nodes; prefill and decode never share a node."""
    per_node = max(1, t.gpus // max(1, gpus))
    if mode == Mode.AGG.value:
        return math.ceil(replicas / per_node)
    return math.ceil(prefill / per_node) + math.ceil(decode / per_node)


class ServingScreen(WizardScreen):
    step = "serving"
    heading = "How should it serve, and which model?"

    def __init__(self) -> None:
        super().__init__()
        self.itype: InstanceType | None = None
        self.models: dict[str, ModelChoice] = {}

    def compose_body(self) -> ComposeResult:
        answers = self.wizard.answers
        yield ChoiceTable(["Mode", "How"], reason_column="", id="modes", classes="short-list")
        yield ChoiceTable(["Model", "Weights GB", "GPUs (TP)", "Needs GB"], reason_column="Fits", id="models")
        with Horizontal(id="replicas-row"):
            yield Label("Workers ", classes="field-label agg-only")
            yield Input(str(answers.replicas), id="replicas", classes="agg-only number", type="integer")
            yield Label("Prefill workers ", classes="field-label disagg-only")
            yield Input(str(answers.prefill_replicas), id="prefill", classes="disagg-only number", type="integer")
            yield Label(" Decode workers ", classes="field-label disagg-only")
            yield Input(str(answers.decode_replicas), id="decode", classes="disagg-only number", type="integer")
            yield Checkbox("privileged (EFA memory registration)", answers.privileged, id="privileged",
                           classes="efa-only",
                           tooltip="Later upstream EFA docs need privileged: true for fi_mr_reg of GPU memory; "
                                   "IPC_LOCK alone is the guide's default")
        with Horizontal(id="token-row"):
            yield Label("Hugging Face token ", classes="field-label")
            yield Input(self.wizard.hf_token or "", password=True, id="hf-token",
                        placeholder="optional: read from HF_TOKEN; never written to the plan or logs")
        yield Static("", id="fit")

    def on_mount(self) -> None:
        self.query_one("#modes", ChoiceTable).focus()
        self.query_one("#models", ChoiceTable).loading = True
        self.set_status(f"Reading {self.wizard.answers.instance_type} in {self.wizard.answers.region}…", "loading")
        self._load_worker(self.wizard.answers.region)

    @work(thread=True, exclusive=True, group="serving-load", name="serving-load")
    def _load_worker(self, region: str) -> None:
        try:
            summary = self.wizard.load_region_summary(region)
        except Exception as err:  # noqa: BLE001
            self.post_message(LoadFailed(f"the instance types in {region}", redact(f"{type(err).__name__}: {err}"),
                                         "Esc and try again"))
            return
        self.post_message(RegionLoaded(summary))

    def loading_done(self) -> None:
        self.query_one("#models", ChoiceTable).loading = False

    def on_region_loaded(self, message: RegionLoaded) -> None:
        self.loading_done()
        answers = self.wizard.answers
        catalog = self.wizard.catalog
        self.itype = instance_type_info(answers.instance_type, catalog, message.summary)
        modes = mode_choices(self.itype, catalog)
        mode_rows = [ChoiceRow(m.mode, (Text(m.title, style="bold"), MODE_CELLS[m.mode]), available=m.available,
                               reason=m.reason, short=m.short, detail=m.detail) for m in modes]
        self.query_one("#modes", ChoiceTable).set_rows(mode_rows, highlight=answers.mode)
        choices = model_choices(catalog, self.itype)
        self.models = {c.model.id: c for c in choices}
        model_rows = [
            ChoiceRow(c.model.id, (Text(c.model.id), f"{c.model.weights_gb:g}", str(c.gpus_needed),
                                   f"{c.model.min_gpu_memory_gb:g}"),
                      available=c.fits, reason=c.reason, short=c.short,
                      detail=f"{c.model.id}: {c.model.weights_gb:g} GB of weights; download Job memory "
                             f"{c.model.download_memory}" + (f"; recipe {c.model.recipe}" if c.model.recipe else ""))
            for c in choices
        ]
        highlight = answers.model if answers.model in self.models else next(
            (c.model.id for c in choices if c.fits), None)
        self.query_one("#models", ChoiceTable).set_rows(model_rows, highlight=highlight)
        self._show_mode(answers.mode)
        self._show_fit()
        self.set_status(f"Workers run on {answers.instance_type}. Enter accepts mode, model and replicas as shown.",
                        "ok")

    # Live feedback ---------------------------------------------------------------------------------

    def _show_mode(self, mode: str | None) -> None:
        disagg = mode in (Mode.DISAGG_EFA.value, Mode.DISAGG_TCP.value)
        for w in self.query(".agg-only"):
            w.display = not disagg
        for w in self.query(".disagg-only"):
            w.display = disagg
        for w in self.query(".efa-only"):
            w.display = mode == Mode.DISAGG_EFA.value

    @on(ChoiceTable.Highlighted, "#modes")
    def _mode_highlighted(self, event: ChoiceTable.Highlighted) -> None:
        self._show_mode(event.key)
        self._show_fit()

    @on(ChoiceTable.Highlighted, "#models")
    def _model_highlighted(self, _event: ChoiceTable.Highlighted) -> None:
        self._show_fit()

    @on(Input.Changed, ".number")
    def _number_changed(self, _event: Input.Changed) -> None:
        self._show_fit()

    def _replicas(self, widget_id: str, what: str) -> int | None:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        try:
            value = int(text)
        except ValueError:
            self._replica_error = f"{what}: {text!r} is not a whole number; give 1 to {MAX_REPLICAS}"
            return None
        if not 1 <= value <= MAX_REPLICAS:
            self._replica_error = f"{what}: {value} is out of range; give 1 to {MAX_REPLICAS}"
            return None
        return value

    def _show_fit(self) -> None:
        fit = self.query_one("#fit", Static)
        t = self.itype
        mode = self.query_one("#modes", ChoiceTable).highlighted_key
        model = self.models.get(self.query_one("#models", ChoiceTable).highlighted_key or "")
        if t is None or model is None or mode is None:
            fit.update("")
            return
        self._replica_error = ""
        replicas = self._replicas("replicas", "Workers") or 1
        prefill = self._replicas("prefill", "Prefill workers") or 1
        decode = self._replicas("decode", "Decode workers") or 1
        gpus = model.gpus_needed
        problems = fit_problems(model.model, t, gpus) if model.fits else [model.reason]
        mode_row = self.query_one("#modes", ChoiceTable).highlighted_row
        if mode_row is not None and not mode_row.available:
            fit.update(Text(f"{MODE_TITLES.get(mode, mode)} is not possible here: {mode_row.reason}"))
            fit.set_class(True, "-problem")
            return
        nodes = instances_needed(mode, t, gpus, replicas, prefill, decode)
        price = f" ≈ ${nodes * t.on_demand_price:.2f}/h on demand" if t.on_demand_price else ""
        if problems:
            fit.update(Text("Does not fit: " + "; ".join(problems)))
            fit.set_class(True, "-problem")
        else:
            per = f"{gpus} × {t.gpu_model} per worker (tensor parallel {gpus})"
            fit.update(Text(f"Fits: {model.model.id} on {per} → {nodes} × {t.name}{price}"))
            fit.set_class(False, "-problem")

    # Accepting -------------------------------------------------------------------------------------

    @on(ChoiceTable.Chosen)
    def _chosen(self, event: ChoiceTable.Chosen) -> None:
        event.stop()
        self.accept()

    @on(ChoiceTable.Refused)
    def _refused(self, event: ChoiceTable.Refused) -> None:
        event.stop()
        what = MODE_TITLES.get(event.key, event.key)
        self.refuse(f"{what} is not possible: {event.reason}")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.accept()

    def accept(self) -> None:
        answers = self.wizard.answers
        t = self.itype
        modes = self.query_one("#modes", ChoiceTable)
        models = self.query_one("#models", ChoiceTable)
        mode_row = modes.highlighted_row
        model_key = models.highlighted_key
        if t is None or mode_row is None or model_key is None:
            self.refuse("Still reading the instance type; wait a moment.")
            return
        if not mode_row.available:
            self.refuse(f"{mode_row.cells[0].plain if isinstance(mode_row.cells[0], Text) else mode_row.key} "
                        f"is not possible: {mode_row.reason}. Pick another mode, or Esc to choose an EFA type.")
            modes.focus()
            return
        model = self.models[model_key]
        if not model.fits:
            self.refuse(f"{model_key} does not fit: {model.reason}")
            models.focus()
            return
        self._replica_error = ""
        disagg = mode_row.key != Mode.AGG.value
        values = {}
        for widget_id, what in ((("prefill", "Prefill workers"), ("decode", "Decode workers")) if disagg
                                else (("replicas", "Workers"),)):
            v = self._replicas(widget_id, what)
            if v is None:
                self.refuse(self._replica_error)
                self.query_one(f"#{widget_id}", Input).focus()
                return
            values[widget_id] = v
        gpus = gpus_for(model.model, t)
        problems = fit_problems(model.model, t, gpus)
        if problems:
            self.refuse("Does not fit: " + "; ".join(problems))
            return
        candidate = answers.copy(mode=mode_row.key, model=model_key, worker_gpus=gpus,
                                 privileged=self.query_one("#privileged", Checkbox).value and
                                 mode_row.key == Mode.DISAGG_EFA.value)
        if disagg:
            candidate.prefill_replicas, candidate.decode_replicas = values["prefill"], values["decode"]
        else:
            candidate.replicas = values["replicas"]
        try:
            candidate.to_plan()
        except PlanError as err:
            self.refuse("The plan is not valid: " + "; ".join(err.lines()))
            return
        token = self.query_one("#hf-token", Input).value.strip()
        if token:
            register_secret(token)
            self.wizard.hf_token = token
        self.wizard.answers = candidate
        self.wizard.advance(self.step)
