"""`dynamo-wizard apply PLAN [--yes]`: provision a plan headless, on the same runner as the TUI.

Load and check the plan, run the preflight (credentials, tools, the type in the zones, quota, reservations:
a failure stops it before anything is created), ask for confirmation (unless --yes; with no terminal to ask on, refuse), take
the Hugging Face token from HF_TOKEN (or ask for it without echo on a terminal), run the provisioning
graph with every log line prefixed by its step, and print the endpoint, the port-forward command and the
cost per hour. Exit 0 only when the smoke test passed. Running it again resumes: every step finds what
exists and adopts it, so nothing is created twice.

The TUI uses `make_runner(plan, hf_token)` (the provision screen) and `pod_watch(plan)` (its pod table).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TextIO

from ..core.catalog import Catalog, load_catalog
from ..core.errors import PlanError, Problem, WizardError
from ..core.events import Listener
from ..core.ledger import Ledger
from ..core.paths import deployment_dir
from ..core.plan import Plan, load_plan, save_plan
from ..core.protocols import ProvisionBackends
from ..core.redact import redact, register_secret
from ..core.runner import Runner, RunReport
from ..core.steps import S_EFA, S_SMOKE, ProvisionOptions, build_provision_graph
from .printer import StepPrinter

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 130
SANDBOX_DUMMY_TOKEN = "sandbox-hf-token-not-real"


def in_sandbox() -> bool:
    return os.environ.get("DYNAMO_WIZARD_SANDBOX") == "1"


def default_options(hf_token: str | None, catalog: Catalog | None = None) -> ProvisionOptions:
    """Real AWS polls every few seconds; the sandbox's clock is fast, so it polls often."""
    if in_sandbox():
        return ProvisionOptions(hf_token=hf_token, catalog=catalog, poll=0.2, poll_max=1.0)
    return ProvisionOptions(hf_token=hf_token, catalog=catalog)


def make_runner(plan: Plan, hf_token: str | None = None, *, listeners: Iterable[Listener] = (),
                backends: ProvisionBackends | None = None, options: ProvisionOptions | None = None,
                max_workers: int = 6) -> Runner:
    """The provisioning runner for `plan` (TUI and headless). The plan is kept beside the ledger so the
    welcome screen can resume it; the token goes only into the Secret."""
    if hf_token:
        register_secret(hf_token)
    if backends is None:
        from ..cloud.backends import build_backends

        backends = build_backends(plan.region)
    options = options or default_options(hf_token)
    if options.hf_token != hf_token and hf_token is not None:
        options = replace(options, hf_token=hf_token)
    save_plan(plan, deployment_dir(plan.deployment) / "plan.yaml")
    steps = build_provision_graph(plan, backends, options)
    return Runner(steps, deployment=plan.deployment, ledger=Ledger(plan.deployment), listeners=listeners,
                  max_workers=max_workers)


def pod_watch(plan: Plan) -> Callable[[str, Any, Any], None]:
    """`(namespace, view, stop)` for the provision screen's pod table (waits for the cluster to exist)."""
    from ..cloud.backends import pod_watch_for

    poll = 0.5 if in_sandbox() else 5.0
    return pod_watch_for(plan.cluster_name, plan.region, poll=poll)


# --------------------------------------------------------------------------------------------------
# Headless


def _check(plan: Plan, catalog: Catalog, out: TextIO) -> None:
    from ..core import rules

    problems = rules.check_plan(plan, catalog)
    errors = rules.errors(problems)
    if errors:
        raise PlanError(errors)
    for warning in rules.warnings(problems):
        print(redact(f"warning: {warning}"), file=out)


def _preflight(plan: Plan, out: TextIO) -> None:
    """What `dynamo-wizard preflight` checks, before anything is created: credentials, eksctl and helm, the
    type offered in the zones, the vCPU quota, and each reservation (found, right type and zone, active,
    enough free). A failure stops here, each with its fix; warnings are printed and do not."""
    from ..core.preflight import failed
    from .discovery import plan_verdicts

    verdicts = plan_verdicts(plan)
    for v in verdicts:
        if not v.ok and v.severity == "warning":
            print(redact(f"warning: {v.check}: {v.detail}" + (f" — {v.fix}" if v.fix else "")), file=out)
    bad = failed(verdicts)
    if bad:
        raise PlanError([Problem(f"preflight {v.check}", v.detail, v.fix) for v in bad])


def cost_line(plan: Plan, catalog: Catalog) -> str:
    from ..core.pricing import format_cost, hourly_cost

    itype = catalog.instance_type(plan.serving.instance_type)
    if itype is None:
        return "unknown (the instance type is not in the catalog)"
    return format_cost(hourly_cost(plan, itype, itype.on_demand_price))


def describe(plan: Plan, catalog: Catalog) -> list[str]:
    workers = ", ".join(f"{role} {w.replicas}×{w.gpus} GPU" for role, w in plan.serving.workers().items())
    return [
        f"Deployment {plan.deployment} in {plan.region}: cluster {plan.cluster_name}, namespace {plan.namespace}",
        f"Serving {plan.serving.model} ({plan.serving.mode.value}) on {plan.serving.instance_type}: {workers}",
        f"Dynamo {plan.dynamo.release}; model cache on EFS: {'yes' if plan.storage.efs else 'no'}"
        + (f"; capacity reservation: {', '.join(plan.reservation.ids) or plan.reservation.tags}"
           if plan.reservation else ""),
        f"Cost while it runs: ≈ {cost_line(plan, catalog)}",
    ]


def _confirm(plan: Plan, catalog: Catalog, inp: TextIO, out: TextIO) -> bool:
    for line in describe(plan, catalog):
        print(line, file=out)
    print(f"This creates AWS resources that cost money until `dynamo-wizard cleanup --deployment "
          f"{plan.deployment}`.", file=out)
    print("Go ahead? [y/N] ", end="", file=out, flush=True)
    answer = inp.readline()
    return answer.strip().lower() in ("y", "yes")


def hf_token_from(env: dict[str, str] | os._Environ[str], interactive: bool, out: TextIO) -> str | None:
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    if in_sandbox():
        return SANDBOX_DUMMY_TOKEN
    if interactive:
        try:
            typed = getpass.getpass("Hugging Face token (Enter for none; input is hidden): ")
        except (EOFError, KeyboardInterrupt):
            print("", file=out)
            return None
        return typed.strip() or None
    print("note: HF_TOKEN is not set; public models download anonymously (rate limited)", file=out)
    return None


def end_summary(plan: Plan, catalog: Catalog, report: RunReport, state: Any) -> list[str]:
    from ..core import manifests as mf

    profile = mf.release_profile(plan, catalog)
    service = mf.frontend_service_name(plan, profile)
    port = profile.graph.frontend_port
    lines = []
    smoke = state.get("smoke") if state is not None else None
    if smoke:
        lines.append(f"✔ {plan.serving.model} is serving (graph {plan.graph_name} in {plan.namespace}).")
        lines.append(f"  answer to the smoke test: {redact(str(smoke.get('answer', '')))[:160]}")
    efa = state.get("efa") if state is not None else None
    if efa:
        verdicts = sorted(set(efa.values()))
        lines.append(f"  KV transfer: {', '.join(verdicts)} (see [{S_EFA}] above)")
    lines += [
        f"  endpoint:     http://localhost:{port}/v1  (OpenAI-compatible, after the port-forward)",
        f"  port-forward: kubectl -n {plan.namespace} port-forward svc/{service} {port}:{port}",
        (f"  kubeconfig:   {os.environ.get('KUBECONFIG', '')} (the sandbox's, written by its eksctl)" if in_sandbox()
         else f"  kubeconfig:   eksctl wrote one; on another machine: aws eks update-kubeconfig --region "
              f"{plan.region} --name {plan.cluster_name}"),
        f"  no port:      GET /api/v1/namespaces/{plan.namespace}/services/{service}:{port}/proxy/v1/models "
        "through the API server",
        f"  cost:         ≈ {cost_line(plan, catalog)}",
        f"  clean up:     dynamo-wizard cleanup --deployment {plan.deployment}",
    ]
    return lines


def run(args: argparse.Namespace, *, inp: TextIO | None = None, out: TextIO | None = None,
        backends: ProvisionBackends | None = None, options: ProvisionOptions | None = None) -> int:
    inp = inp or sys.stdin
    out = out or sys.stdout
    plan = load_plan(args.plan)
    catalog = load_catalog()
    _check(plan, catalog, out)
    interactive = bool(getattr(inp, "isatty", lambda: False)())
    if not getattr(args, "yes", False) and not interactive:
        raise WizardError("refusing to provision without a confirmation: there is no terminal to ask on",
                          f"run `dynamo-wizard apply {args.plan} --yes` to go ahead without asking")
    _preflight(plan, out)
    if not getattr(args, "yes", False):
        if not _confirm(plan, catalog, inp, out):
            print("Nothing was done.", file=out)
            return EXIT_REFUSED
    token = hf_token_from(os.environ, interactive, out)
    printer = StepPrinter(out, skipped="already present")
    runner = make_runner(plan, token, listeners=[printer], backends=backends,
                         options=options or default_options(token, catalog))
    print(f"Logs: {runner.log_dir}  ·  ledger: {deployment_dir(plan.deployment) / 'ledger.jsonl'}", file=out)
    print("Ctrl-C stops at the next safe point (twice: now); `dynamo-wizard apply` again resumes.", file=out,
          flush=True)
    report = runner.run()
    if report.cancelled:
        print("Stopped. Run the same command again to resume, or clean up with "
              f"`dynamo-wizard cleanup --deployment {plan.deployment}`.", file=out)
        return EXIT_CANCELLED
    if report.status(S_SMOKE) != "done":
        failed = report.failed()
        if failed:
            print(redact(f"✖ {failed[0].title} failed: {failed[0].error}"), file=out)
            if failed[0].fix:
                print(redact(f"  what to do: {failed[0].fix}"), file=out)
            print(f"  its log: {failed[0].log_path}", file=out)
        print("Run the same command again to resume (nothing is created twice), or clean up with "
              f"`dynamo-wizard cleanup --deployment {plan.deployment}`.", file=out)
        return EXIT_FAILED
    for line in end_summary(plan, catalog, report, runner.state):
        print(line, file=out)
    out.flush()
    return EXIT_OK
