"""The wizard's calls into the rest of the product (preflight, pricing, rendering, rules, ledgers), in one
place, each safe to run in a worker thread. Screens call these; these call core (and, through the
Discovery they are given, cloud)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.paths import deployment_dir, known_deployments

if TYPE_CHECKING:
    from ..core.inventory import ToolCheck
    from ..core.plan import Plan
    from .messages import DeploymentInfo


def _optional(module: str) -> Any | None:
    """A module of another part of the product that may not be installed in this build."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            return None
        raise


def runner_factory() -> Any | None:
    """The provisioning part's `make_runner(plan, hf_token)` (dynamo_wizard.commands.apply), if present."""
    apply_cmd = _optional("dynamo_wizard.commands.apply")
    factory = getattr(apply_cmd, "make_runner", None) if apply_cmd is not None else None
    return factory if callable(factory) else None


def check_tools() -> list[ToolCheck]:
    """eksctl, helm and kubectl as the product runs them (env override, else PATH), with versions
    (dynamo_wizard.cloud.tools; looked up by name so that tui does not import cloud)."""
    tools = importlib.import_module("dynamo_wizard.cloud.tools")
    return list(tools.check_tools())


def deployments_info() -> list[DeploymentInfo]:
    """Deployments this machine's ledgers know, with what is still live."""
    from ..core.ledger import Ledger
    from .messages import DeploymentInfo

    infos: list[DeploymentInfo] = []
    for name in known_deployments():
        live = Ledger(name).live_resources()
        plan_file = deployment_dir(name) / "plan.yaml"
        infos.append(DeploymentInfo(
            name=name,
            live_resources=len(live),
            kinds=tuple(dict.fromkeys(r.kind for r in live)),
            plan_path=plan_file if plan_file.exists() else None,
        ))
    return infos


def deployment_plan(info: DeploymentInfo) -> Plan | None:
    from ..core.plan import load_plan

    if info.plan_path is None:
        return None
    return load_plan(info.plan_path)


def keep_confirmed_plan(plan: Plan) -> Path:
    """Where a confirmed plan is kept beside its ledger (resume and cleanup read it)."""
    from .answers import write_plan

    return write_plan(plan, deployment_dir(plan.deployment) / "plan.yaml")


# Review ----------------------------------------------------------------------------------------------


def rendered_files(plan: Plan, catalog: Any, zones: tuple[str, ...] | None = None) -> list[Any]:
    """The manifests the deployment applies (core.manifests), in apply order."""
    from ..core.manifests import ClusterFacts, RenderContext, render_all

    facts = ClusterFacts(zones=zones or (plan.zones or None))
    return render_all(plan, RenderContext(catalog=catalog, facts=facts))


def export_plan(plan: Plan, directory: str | Path, catalog: Any) -> list[Path]:
    """plan.yaml and every rendered file (and the runbook, when the render command provides it) under
    `directory`; returns the paths written. Existing files of the same names are replaced."""
    from .answers import write_plan

    root = Path(directory).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    render_cmd = _optional("dynamo_wizard.commands.render")
    writer = getattr(render_cmd, "write_render", None) if render_cmd is not None else None
    if callable(writer):
        written = [Path(p) for p in writer(plan, root, catalog=catalog)]
        plan_file = root / "plan.yaml"
        if plan_file not in written:
            written.insert(0, write_plan(plan, plan_file))
        return written
    written = [write_plan(plan, root / "plan.yaml")]
    for f in rendered_files(plan, catalog):
        path = root / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f.text(), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


SELECTOR_TERMS_WARNING = ("capacityReservationSelectorTerms on the gpu-reserved NodeClass stop Auto Mode from "
                          "using open ODCRs for every NodeClass in the cluster")


def build_review(plan: Plan, *, catalog: Any, mode: str, now: Any, identity_of: Any, summary_of: Any,
                 reservations_of: Any) -> Any:
    """Everything the review screen shows (runs in a worker). `identity_of()`, `summary_of(region)` and
    `reservations_of(region)` are the app's (cached) discovery calls; in plan-only mode they are not used."""
    from ..core import rules
    from ..core.errors import PlanError as _PlanError
    from ..core.pricing import format_cost, hourly_cost
    from ..core.validate import find_schemas_dir, validate_rendered
    from .answers import plan_yaml
    from .messages import ReviewData

    review = ReviewData(plan_yaml=plan_yaml(plan))
    problems = rules.check_plan(plan, catalog)
    review.problems += [str(p) for p in rules.errors(problems)]
    review.warnings += [str(p) for p in rules.warnings(problems)]
    files: list[Any] = []
    try:
        files = rendered_files(plan, catalog)
    except _PlanError as err:
        review.problems += err.lines()
    review.files = [("plan.yaml", review.plan_yaml)] + [(f.name, f.text()) for f in files]
    if files:
        rendered_problems = rules.check_rendered(plan, files, catalog) + validate_rendered(
            files, find_schemas_dir(), plan.cluster.kubernetes_version)
        review.problems += [str(p) for p in rules.errors(rendered_problems)]
        review.warnings += [str(p) for p in rules.warnings(rendered_problems)]
    if plan.reservation is not None:
        review.warnings.append(SELECTOR_TERMS_WARNING)

    summary = None
    if mode == "plan-only":
        review.notes.append("plan-only mode: credentials, tools, offerings, quotas and reservations are not checked")
    else:
        from ..core.preflight import run_preflight

        identity, identity_error = None, ""
        try:
            identity = identity_of()
        except Exception as err:  # noqa: BLE001 - becomes the failing credentials verdict
            identity_error = str(getattr(err, "message", err))
        summary = summary_of(plan.region)
        reservations, notes = reservations_of(plan.region)
        review.verdicts = run_preflight(plan, identity=identity, tools=check_tools(), summary=summary,
                                        reservations=reservations, now=now, identity_error=identity_error,
                                        reservation_notes=notes, catalog=catalog)

    offering = next((o for o in (summary.offerings if summary else []) if o.instance_type == plan.serving.instance_type),
                    None)
    spec = offering or catalog.instance_type(plan.serving.instance_type)
    if spec is not None:
        price = offering.on_demand_price if offering is not None and offering.on_demand_price is not None else \
            getattr(catalog.instance_type(plan.serving.instance_type), "on_demand_price", None)
        source = offering.price_source if offering is not None and offering.on_demand_price is not None else "catalog"
        estimate = hourly_cost(plan, spec, price, source)
        review.hourly_cost = estimate.total_per_hour
        review.cost_lines.append(("Estimated cost", format_cost(estimate)))
        if estimate.per_month is not None:
            review.cost_lines.append(("Per month (730 h)", f"${estimate.per_month:,.0f}"))
        review.notes += list(estimate.notes)
    return review
