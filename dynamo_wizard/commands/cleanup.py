"""`dynamo-wizard cleanup [--deployment NAME] [--yes]` and `dynamo-wizard status [--json]`, headless.

Cleanup: find everything the deployment created (ledger ∪ tag/label discovery), show it, ask for the
deployment name to be typed (unless --yes), then delete it in dependency order through the cleanup
runner, logging every line prefixed by its step. A second cleanup finds nothing and says so. An
interrupted cleanup (Ctrl-C, a crash) is resumed by running it again.

Status: the deployments the ledger knows or our tag reveals, each with what exists and its cost per hour.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from ..core.cleanup import (
    CleanupBackend,
    Inventory,
    Pacing,
    build_inventory,
    kind_title,
    make_cleanup_runner,
    manual_command,
)
from ..core.errors import WizardError
from ..core.ledger import Ledger
from ..core.paths import known_deployments, logs_dir, state_dir
from ..core.redact import redact
from ..core.runner import Runner
from .printer import StepPrinter

SANDBOX_TIME_SCALE = 60.0  # the sandbox runs real-world durations 60 × speed as fast (sandbox.timings)
BackendFactory = Callable[[str], CleanupBackend]  # region -> backend


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def deployment_region(deployment: str) -> str:
    """Where a deployment lives: the region its ledger or saved plan names, else the default region."""
    ledger = Ledger(deployment)
    for entry in ledger.entries():
        extra = entry.get("extra")
        if isinstance(extra, dict) and isinstance(extra.get("region"), str):
            return str(extra["region"])
    ddir = state_dir() / "deployments" / deployment
    for name in ("plan.yaml", "plan.yml"):
        path = ddir / name
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(data, dict) and isinstance(data.get("region"), str):
                return str(data["region"])
    return default_region()


def pacing_from_env() -> Pacing:
    """Real-world polling, or the sandbox's scaled clock when running against it."""
    if os.environ.get("DYNAMO_WIZARD_SANDBOX") == "1":
        try:
            speed = float(os.environ.get("DYNAMO_WIZARD_SANDBOX_SPEED") or 1.0)
        except ValueError:
            speed = 1.0
        return Pacing.scaled(SANDBOX_TIME_SCALE * max(speed, 0.01))
    return Pacing()


def default_backend(region: str) -> CleanupBackend:
    from ..cloud.owned import OwnedResources

    return OwnedResources(region)


@dataclass
class CleanupSession:
    """One deployment's inventory, and what is needed to delete it."""

    deployment: str
    region: str
    backend: CleanupBackend
    ledger: Ledger
    inventory: Inventory

    def runner(self, selected: list[tuple[str, str, str]] | None = None, pacing: Pacing | None = None
               ) -> Runner:
        """The cleanup graph on the shared runner; its logs go to <deployment>/logs/cleanup/."""
        log_dir = logs_dir(self.deployment) / "cleanup"
        log_dir.mkdir(parents=True, exist_ok=True)
        return make_cleanup_runner(self.inventory, self.backend, self.ledger, selected=selected,
                                   pacing=pacing or pacing_from_env(), log_dir=log_dir)


def open_session(deployment: str, *, region: str | None = None,
                 backend_factory: BackendFactory | None = None) -> CleanupSession:
    """Discover what exists for `deployment` (the ledger united with tags and labels)."""
    region = region or deployment_region(deployment)
    backend = (backend_factory or default_backend)(region)
    ledger = Ledger(deployment)
    resources = ledger.resources()
    discovery = backend.discover(deployment, resources)
    inventory = build_inventory(deployment, resources, discovery)
    return CleanupSession(deployment, region, backend, ledger, inventory)


def deployments_by_tag(regions: list[str]) -> tuple[dict[str, str], list[str]]:
    """deployment -> region for every deployment our tag reveals in these regions; notes on failures."""
    from ..cloud.owned import OwnedAws

    found: dict[str, str] = {}
    notes: list[str] = []
    for region in regions:
        try:
            for name in OwnedAws(region).deployments_by_tag():
                found.setdefault(name, region)
        except Exception as err:  # noqa: BLE001 - no credentials, no network: a note, not a crash
            notes.append(f"could not search {region} by tag: {redact(str(err).splitlines()[0] if str(err) else type(err).__name__)}")
    return found, notes


def all_deployments(search_tags: bool = True) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """deployment -> (region, source) with source 'ledger', 'tag' or 'ledger+tag'."""
    known = {name: (deployment_region(name), "ledger") for name in known_deployments()}
    notes: list[str] = []
    if search_tags:
        regions = sorted({r for r, _ in known.values()} | {default_region()})
        tagged, notes = deployments_by_tag(regions)
        for name, region in tagged.items():
            if name in known:
                known[name] = (known[name][0], "ledger+tag")
            else:
                known[name] = (region, "tag")
    return dict(sorted(known.items())), notes


# --------------------------------------------------------------------------------------------------
# Output


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "-"
    if cost < 0.01:
        return "<$0.01/h" if cost > 0 else "$0/h"
    return f"${cost:,.2f}/h"


def print_inventory(inventory: Inventory, out: TextIO) -> None:
    print(f"Deployment {inventory.deployment} in {inventory.region or '?'} "
          f"(cluster {inventory.cluster_name or '-'}: {inventory.cluster_state})", file=out)
    if not inventory.items:
        print("  nothing found", file=out)
    rows = [(kind_title(i.kind), i.ref.display_name, "in ledger only" if i.state == "ledger-only" else i.state,
             format_cost(i.cost_per_hour) if i.state == "exists" and i.cost_per_hour else "",
             i.detail) for i in inventory.items]
    widths = [max([len(r[c]) for r in rows] + [4]) for c in range(3)]
    for kind, name, state, cost, detail in rows:
        print(f"  {kind:<{widths[0]}}  {name:<{widths[1]}}  {state:<{widths[2]}}  {cost:>10}  {detail}".rstrip(),
              file=out)
    if inventory.cost_per_hour():
        print(f"  costs about {format_cost(inventory.cost_per_hour())} while it exists", file=out)
    for note in inventory.notes:
        print(f"  note: {note}", file=out)


def _ask(prompt: str, inp: TextIO, out: TextIO) -> str | None:
    print(prompt, end="", file=out, flush=True)
    line = inp.readline()
    if not line:
        print("", file=out)
        return None
    return line.strip()


def choose_deployment(args: argparse.Namespace, inp: TextIO, out: TextIO) -> tuple[str, str] | None:
    """(deployment, region): --deployment, or the only one known, or the one the user names."""
    if args.deployment:
        return args.deployment, deployment_region(args.deployment)
    known, notes = all_deployments()
    for note in notes:
        print(f"note: {note}", file=out)
    if len(known) == 1:
        name, (region, _) = next(iter(known.items()))
        return name, region
    if not known:
        raise WizardError("no deployment is known here or carries our tag in this region",
                          "give --deployment NAME (and set AWS_REGION to its region)")
    print("Deployments:", file=out)
    for name, (region, source) in known.items():
        print(f"  {name}  ({region}, from {source})", file=out)
    if args.yes:
        raise WizardError("more than one deployment is known", "give --deployment NAME")
    answer = _ask("Which deployment? ", inp, out)
    if not answer or answer not in known:
        raise WizardError(f"{answer!r} is not one of them" if answer else "no deployment chosen",
                          "run again and type one of the names above, or give --deployment NAME")
    return answer, known[answer][0]


def run_cleanup(args: argparse.Namespace, *, backend_factory: BackendFactory | None = None,
                inp: TextIO | None = None, out: TextIO | None = None) -> int:
    inp = inp or sys.stdin
    out = out or sys.stdout
    chosen = choose_deployment(args, inp, out)
    if chosen is None:
        return 1
    deployment, region = chosen
    session = open_session(deployment, region=region, backend_factory=backend_factory)
    inventory = session.inventory
    print_inventory(inventory, out)
    live = inventory.live()
    if not live and not inventory.gone():
        print(f"Nothing to clean up for {deployment}.", file=out)
        return 0
    if live and not getattr(args, "yes", False):
        answer = _ask(f"Delete the {len(live)} resource(s) above? Type the deployment name ({deployment}) "
                      "to confirm: ", inp, out)
        if answer != deployment:
            print("Not confirmed; nothing was deleted.", file=out)
            return 1
    runner = session.runner()
    runner.add_listener(StepPrinter(out, skipped="nothing to do"))
    print(f"Logs: {runner.log_dir}  ·  ledger: {session.ledger.path}", file=out)
    print("Ctrl-C stops at the next safe point; the same command again finishes the cleanup.", file=out, flush=True)
    report = runner.run()  # Ctrl-C here cancels at a safe point (the runner catches it)
    if not report.ok:
        for step in report.failed():
            print(redact(f"✖ {step.step_id}: {step.error}"), file=out)
            if step.fix:
                print(redact(f"  what to do: {step.fix}"), file=out)
        if report.cancelled:
            print("Cleanup interrupted; run the same command again to finish.", file=out)
            return 130
        return 1
    # Check: nothing of ours is left (what the runner did not create is also caught here).
    after = open_session(deployment, region=region, backend_factory=backend_factory).inventory
    left = after.live()
    if left:
        print("Still there after the cleanup:", file=out)
        for item in left:
            print(f"  {kind_title(item.kind)} {item.ref.display_name}: "
                  f"{manual_command(item.ref, after.region, after.cluster_name)}", file=out)
        return 1
    print(f"Everything {deployment} created is gone.", file=out)
    return 0


def run_status(args: argparse.Namespace, *, backend_factory: BackendFactory | None = None,
               out: TextIO | None = None) -> int:
    out = out or sys.stdout
    known, notes = all_deployments()
    reports: list[dict[str, Any]] = []
    inventories: list[tuple[Inventory, str]] = []
    for name, (region, source) in known.items():
        try:
            inventory = open_session(name, region=region, backend_factory=backend_factory).inventory
        except Exception as err:  # noqa: BLE001 - one broken deployment must not hide the others
            notes.append(f"{name}: could not be inspected: {redact(str(err).splitlines()[0] if str(err) else type(err).__name__)}")
            continue
        inventories.append((inventory, source))
        data = inventory.to_dict()
        data["source"] = source
        data["exists"] = sum(1 for i in inventory.items if i.state == "exists")
        data["gone"] = sum(1 for i in inventory.items if i.state == "gone")
        reports.append(data)
    if getattr(args, "json", False):
        json.dump({"deployments": reports, "notes": notes}, out, indent=2, default=str)
        print(file=out)
        return 0
    if not reports:
        print("No deployments known here, and none found by tag.", file=out)
    for inventory, source in inventories:
        print(f"[{source}] ", end="", file=out)
        print_inventory(inventory, out)
    for note in notes:
        print(f"note: {note}", file=out)
    return 0
