"""The wizard's answers, shared by the TUI and the plain `plan` front end.

Both front ends ask the same questions and fill the same `Answers`; `Answers.to_plan()` is the only way
either of them turns answers into a plan, so the two write byte-identical plan files for the same answers.
The answers as they stand are kept on disk (`core.paths.draft_plan_path()`) after every screen, so a user
who quits can continue where they stopped.

Nothing here imports Textual, boto3 or kubernetes: `dynamo-wizard plan` uses it without the TUI. The
plan model (pydantic) and YAML are imported when a plan is made or read, not at import: the TUI's first
screen appears before them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import PlanError, Problem
from ..core.paths import draft_plan_path

if TYPE_CHECKING:
    from ..core.plan import Plan

# The order of the wizard's screens; the draft remembers the next one to show.
SCREENS: tuple[str, ...] = ("welcome", "region", "families", "capacity", "serving", "review")
SCREEN_TITLES: dict[str, str] = {
    "welcome": "Welcome",
    "region": "Region",
    "families": "Instances",
    "capacity": "Capacity",
    "serving": "Serving",
    "review": "Review",
}

CapacityChoice = Literal["none", "ids", "tags"]
DEFAULT_DEPLOYMENT = "ai-dynamo"  # the guide's CLUSTER_NAME
DEFAULT_REGION = "us-east-1"  # the guide's AWS_REGION
DEFAULT_FAMILY = "g6e"
DEFAULT_INSTANCE_TYPE = "g6e.2xlarge"  # the guide's agg and disagg-tcp type
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"  # the guide's agg model: fits any GPU, downloads in seconds
DRAFT_MARKER = "# dynamo-wizard draft"
_NEXT_RE = re.compile(r"^# next-screen: ([a-z]+)\s*$", re.MULTILINE)


def default_region() -> str:
    """The region the user's AWS configuration names, else the guide's."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


@dataclass
class Answers:
    """Everything the wizard asks, with defaults that together make a valid, working plan."""

    deployment: str = DEFAULT_DEPLOYMENT
    region: str = field(default_factory=default_region)
    zones: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=lambda: [DEFAULT_FAMILY])
    instance_type: str = DEFAULT_INSTANCE_TYPE
    capacity_types: list[str] = field(default_factory=lambda: ["on-demand", "spot"])
    capacity: CapacityChoice = "none"
    reservation_ids: list[str] = field(default_factory=list)
    reservation_tags: dict[str, str] = field(default_factory=dict)
    fallback: str = "none"
    mode: str = "agg"  # core.plan.Mode values: agg | disagg-efa | disagg-tcp
    model: str = DEFAULT_MODEL
    worker_gpus: int = 1  # GPUs (and tensor parallel size) per worker
    replicas: int = 1  # agg workers
    prefill_replicas: int = 1
    decode_replicas: int = 1
    privileged: bool = False
    release: str = "1.0.0"
    namespace: str = "dynamo-system"

    def copy(self, **changes: Any) -> Answers:
        return replace(
            self,
            zones=list(self.zones),
            families=list(self.families),
            capacity_types=list(self.capacity_types),
            reservation_ids=list(self.reservation_ids),
            reservation_tags=dict(self.reservation_tags),
            **changes,
        )

    # Answers -> plan -------------------------------------------------------------------------------

    def plan_dict(self) -> dict[str, Any]:
        """The plan as a plain mapping (not yet validated)."""
        from ..core.plan import API_VERSION, KIND

        worker = {"replicas": self.replicas, "gpus": self.worker_gpus, "tensorParallel": self.worker_gpus}
        serving: dict[str, Any] = {"mode": self.mode, "instanceType": self.instance_type, "model": self.model}
        if self.mode == "agg":
            serving["worker"] = worker
        else:
            serving["prefill"] = {**worker, "replicas": self.prefill_replicas}
            serving["decode"] = {**worker, "replicas": self.decode_replicas}
        if self.privileged:
            serving["privileged"] = True
        families = list(self.families)
        family = self.instance_type.split(".", 1)[0]
        if family not in families:  # the serving type's family is always in the NodePool
            families.insert(0, family)
        data: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "deployment": self.deployment,
            "region": self.region,
            "zones": list(self.zones),
            "gpu": {"families": families, "capacityTypes": list(self.capacity_types)},
            "serving": serving,
            "dynamo": {"release": self.release, "namespace": self.namespace},
        }
        if self.capacity != "none":
            # The capacity screen clears the other list when the user picks ids or tags; a plan file may
            # carry both (terms are ORed), and then both are kept.
            reservation: dict[str, Any] = {}
            if self.reservation_ids:
                reservation["ids"] = list(self.reservation_ids)
            if self.reservation_tags:
                reservation["tags"] = dict(self.reservation_tags)
            reservation["fallback"] = self.fallback
            data["reservation"] = reservation
        return data

    def to_plan(self) -> Plan:
        """The validated plan; raises PlanError with one problem per line."""
        from ..core.plan import plan_from_dict

        return plan_from_dict(self.plan_dict())

    # plan -> answers -------------------------------------------------------------------------------

    @classmethod
    def from_plan(cls, plan: Plan) -> Answers:
        from ..core.plan import Mode

        s = plan.serving
        workers = s.workers()
        first = next(iter(workers.values()))
        a = cls(
            deployment=plan.deployment,
            region=plan.region,
            zones=list(plan.zones),
            families=list(plan.gpu.families),
            instance_type=s.instance_type,
            capacity_types=list(plan.gpu.capacity_types),
            mode=s.mode.value,
            model=s.model,
            worker_gpus=first.gpus,
            privileged=s.privileged,
            release=plan.dynamo.release,
            namespace=plan.dynamo.namespace,
        )
        if s.mode is Mode.AGG:
            a.replicas = workers["worker"].replicas
        else:
            a.prefill_replicas = workers["prefill"].replicas
            a.decode_replicas = workers["decode"].replicas
        if plan.reservation is not None:
            a.fallback = plan.reservation.fallback
            a.reservation_ids = list(plan.reservation.ids)
            a.reservation_tags = dict(plan.reservation.tags)
            a.capacity = "ids" if plan.reservation.ids else "tags"
        return a


def plan_yaml(plan: Plan) -> str:
    """The canonical text of a plan file (what both front ends write)."""
    return plan.to_yaml()


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write a plan file atomically (the same bytes from the TUI and from `dynamo-wizard plan`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(plan_yaml(plan), encoding="utf-8")
    tmp.replace(p)
    return p


# The draft ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    answers: Answers
    next_screen: str
    path: Path


def save_draft(answers: Answers, next_screen: str) -> Path:
    """Keep the answers so far; written atomically so a crash never leaves half a draft."""
    if next_screen not in SCREENS:
        raise ValueError(f"unknown screen {next_screen!r}")
    import yaml

    path = draft_plan_path()
    text = (
        f"{DRAFT_MARKER}: the plan as it is being built; `dynamo-wizard` offers to continue it.\n"
        f"# next-screen: {next_screen}\n"
        + yaml.safe_dump(answers.plan_dict(), sort_keys=False)
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def load_draft() -> Draft | None:
    """The saved draft, or None when there is none. A damaged draft raises PlanError (say why, offer to
    discard it) rather than silently starting over."""
    import yaml

    from ..core.plan import plan_from_dict

    path = draft_plan_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError([Problem("draft", f"cannot read {path}: {err}", "discard the draft and start again")]) from None
    match = _NEXT_RE.search(text)
    next_screen = match.group(1) if match and match.group(1) in SCREENS else "region"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise PlanError([Problem("draft", f"{path} is not valid YAML", "discard the draft and start again")]) from None
    plan = plan_from_dict(data)
    return Draft(answers=Answers.from_plan(plan), next_screen=next_screen, path=path)


def discard_draft() -> None:
    try:
        draft_plan_path().unlink()
    except FileNotFoundError:
        pass
