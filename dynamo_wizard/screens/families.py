"""Screen 3 — instance families: every GPU type of the exact Auto Mode families, with GPU model, GPUs and
GPU memory per instance, EFA, the cluster zones offering it and $/h. Enter picks the workers' type; Space
adds the highlighted row's family to the GPU NodePool."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding

from ..core.inventory import RegionSummary
from ..core.redact import redact
from ..tui.choices import TypeChoice, cluster_zones, default_type, type_choices
from ..tui.messages import LoadFailed, RegionLoaded
from ..tui.widgets.choice_table import ChoiceRow, ChoiceTable
from .base import WizardScreen


def short_gpu(model: str) -> str:
    """'NVIDIA RTX PRO Server 6000' -> 'RTX PRO 6000' (the table is narrow; the detail line has it all)."""
    return model.replace("NVIDIA ", "").replace(" Server", "")


def _price(t: TypeChoice) -> str:
    if t.price is None:
        return "?"
    return f"{t.price:.2f}" + ("*" if t.price_source == "catalog" else "")


class FamiliesScreen(WizardScreen):
    step = "families"
    heading = "Which GPU instances? Enter picks the workers' type · Space adds its family to the NodePool"
    BINDINGS = [Binding("ctrl+r", "reload", "Reload", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.summary: RegionSummary | None = None
        self.types: dict[str, TypeChoice] = {}
        self.zones: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield ChoiceTable(["Family", "Type", "GPU", "GPUs", "GB", "vCPU", "EFA", "Zones", "$/h"],
                          multi=True, mark_label="Pool", group_of=lambda r: r.cells[0].plain
                          if isinstance(r.cells[0], Text) else str(r.cells[0]), id="types")

    def on_mount(self) -> None:
        table = self.query_one("#types", ChoiceTable)
        table.focus()
        table.loading = True
        self.set_status(f"Reading GPU offerings, prices and quotas in {self.wizard.answers.region}…", "loading")
        self._load_worker(self.wizard.answers.region)

    def action_reload(self) -> None:
        self.on_mount()

    @work(thread=True, exclusive=True, group="families-load", name="families-load")
    def _load_worker(self, region: str) -> None:
        try:
            summary = self.wizard.load_region_summary(region)
        except Exception as err:  # noqa: BLE001
            self.post_message(LoadFailed(f"the GPU offerings in {region}", redact(f"{type(err).__name__}: {err}"),
                                         "press Ctrl+R to retry, or Esc to pick another region"))
            return
        self.post_message(RegionLoaded(summary))

    def loading_done(self) -> None:
        self.query_one("#types", ChoiceTable).loading = False

    def on_region_loaded(self, message: RegionLoaded) -> None:
        self.loading_done()
        answers = self.wizard.answers
        self.summary = message.summary
        keep, _excluded = cluster_zones(message.summary)
        self.zones = [z for z in answers.zones if z in keep] or keep
        rows = type_choices(message.summary, self.wizard.catalog, self.zones, answers.capacity_types)
        self.types = {r.instance_type: r for r in rows}
        # Marks are the families added to the pool; the workers' type's family is always in it.
        extra = set(answers.families) - {answers.instance_type.split(".", 1)[0]}
        marked = {r.instance_type for r in rows if r.family in extra}
        highlight = default_type(rows, answers.instance_type)
        self.query_one("#types", ChoiceTable).set_rows([self._row(r) for r in rows], highlight=highlight,
                                                        marked=marked)
        if highlight is None:
            self.set_status(f"No GPU type can be used in {answers.region}: Esc to pick another region.", "error")
        else:
            self._show_pool()

    def _row(self, t: TypeChoice) -> ChoiceRow:
        zones = "".join(z[len(self.wizard.answers.region):] for z in t.zones) or "—"
        price = "?" if t.price is None else f"${t.price:.3f}/h" + (" (catalog list price)" if t.price_source == "catalog" else "")
        detail = (f"{t.instance_type}: {t.gpus} × {t.gpu_model} {t.gpu_memory_gb:.0f} GB · {t.vcpus} vCPU · "
                  f"EFA {'yes' if t.efa else 'no'} · zones {', '.join(t.zones) or 'none'} · {price} · "
                  f"counts against the {t.quota_class} vCPU quota")
        return ChoiceRow(
            key=t.instance_type,
            cells=(Text(t.family, style="bold"), t.instance_type, short_gpu(t.gpu_model), str(t.gpus),
                   f"{t.gpu_memory_gb:.0f}", str(t.vcpus), "yes" if t.efa else "no", zones, _price(t)),
            available=t.available,
            reason=t.reason,
            short=t.short,
            detail=detail,
        )

    def _pool(self, instance_type: str | None = None) -> list[str]:
        table = self.query_one("#types", ChoiceTable)
        families = {self.types[k].family for k in table.marked if k in self.types}
        if instance_type is not None:
            families.add(self.types[instance_type].family)
        order = list(self.wizard.catalog.families)
        return sorted(families, key=lambda f: order.index(f) if f in order else 99)

    def _show_pool(self) -> None:
        table = self.query_one("#types", ChoiceTable)
        chosen = table.highlighted_key
        pool = self._pool(chosen if chosen in self.types and self.types[chosen].available else None)
        catalog_priced = any(t.price_source == "catalog" for t in self.types.values())
        note = " · * = offline catalog price" if catalog_priced else ""
        self.set_status(f"GPU NodePool families: {', '.join(pool) or '—'} (Space adds the highlighted family){note}",
                        "ok")

    @on(ChoiceTable.MarksChanged, "#types")
    def _marks(self, _event: ChoiceTable.MarksChanged) -> None:
        self._show_pool()

    @on(ChoiceTable.Highlighted, "#types")
    def _highlighted(self, _event: ChoiceTable.Highlighted) -> None:
        if self.types:
            self._show_pool()

    @on(ChoiceTable.Chosen, "#types")
    def _chosen(self, event: ChoiceTable.Chosen) -> None:
        answers = self.wizard.answers
        answers.instance_type = event.key
        answers.families = self._pool(event.key)
        answers.zones = list(self.zones)
        self.wizard.advance(self.step)

    @on(ChoiceTable.Refused, "#types")
    def _refused(self, event: ChoiceTable.Refused) -> None:
        self.refuse(f"{event.key} cannot be used: {event.reason}")
