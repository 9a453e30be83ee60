"""The plan file: the contract between every front end and the core.

A plan is YAML, `apiVersion: dynamo-wizard/v1`, `kind: Plan` (format documented in docs/plan-format.md).
It is parsed into a frozen pydantic model. Anything wrong (unknown keys, wrong types, impossible
combinations) becomes a `PlanError` whose problems name the field, the value and the fix.

Checks that need the catalog (does the model fit the GPU, does the type support EFA) live in
`core.rules`; this module only checks the plan's own shape and internal consistency.
"""

from __future__ import annotations

import re
import reprlib
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .errors import PlanError, Problem

API_VERSION = "dynamo-wizard/v1"
KIND = "Plan"
# [a-z][a-z0-9-]{0,30}, not ending in "-": it becomes a Kubernetes label value and part of DNS names.
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$")
CLUSTER_NAME_RE = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,99}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
FAMILY_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)?$")
INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)?\.[a-z0-9]+$")
CR_ID_RE = re.compile(r"^cr-[0-9a-f]{8,17}$")
K8S_VERSION_RE = re.compile(r"^1\.\d{2}$")
MEMORY_RE = re.compile(r"^[1-9]\d{0,5}(Mi|Gi)$")
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
RELEASE_RE = re.compile(r"^\d+\.\d+\.\d+$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
TAG_KEY_RE = re.compile(r"^[\w .:/=+\-@]{1,128}$")
TAG_VALUE_RE = re.compile(r"^[\w .:/=+\-@]{0,256}$")


class Mode(str, Enum):  # noqa: UP042 - str() of a member is relied on nowhere, but keep (str, Enum) semantics
    AGG = "agg"
    DISAGG_EFA = "disagg-efa"
    DISAGG_TCP = "disagg-tcp"

    @property
    def disaggregated(self) -> bool:
        return self is not Mode.AGG


# The Dynamo operator names a worker's Deployment `<graph>-<service, lower case>-<8 hex>`; with the longest
# service name (vllmprefillworker) that stays within a 63-character DNS label when the graph name has at most
# 36 characters. The default graph name falls back to a short mode suffix to stay within it.
GRAPH_NAME_MAX = 36
_MODE_SHORT = {Mode.AGG: "agg", Mode.DISAGG_EFA: "efa", Mode.DISAGG_TCP: "tcp"}


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, strict=False
    )


class ClusterSpec(_Model):
    name: str | None = None
    kubernetes_version: str = "1.34"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not CLUSTER_NAME_RE.fullmatch(v):
            raise ValueError("must start with a letter and hold only letters, digits and '-' (at most 100)")
        return v

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if isinstance(v, float):  # YAML reads 1.34 as a float; quote it, but accept the obvious intent
            v = f"{v:.2f}"
        if not isinstance(v, str) or not K8S_VERSION_RE.fullmatch(v):
            raise ValueError('must be a Kubernetes minor version such as "1.34" (quote it in YAML)')
        return v


CapacityType = Literal["on-demand", "spot"]


class GpuSpec(_Model):
    families: tuple[str, ...] = Field(min_length=1, max_length=20)
    capacity_types: tuple[CapacityType, ...] = ("on-demand", "spot")

    @field_validator("families")
    @classmethod
    def _families(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for f in v:
            if "." in f or not FAMILY_RE.fullmatch(f):
                raise ValueError(f"{_short(f)} is not an instance family; give exact families such as g6e or p5en")
        if len(set(v)) != len(v):
            raise ValueError("lists a family twice")
        return v

    @field_validator("capacity_types")
    @classmethod
    def _capacity(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("needs at least one of on-demand, spot")
        if len(set(v)) != len(v):
            raise ValueError("lists a capacity type twice")
        return v


Fallback = Literal["none", "on-demand", "on-demand-and-spot"]


class ReservationSpec(_Model):
    ids: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    fallback: Fallback = "none"

    @field_validator("ids")
    @classmethod
    def _ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i in v:
            if not CR_ID_RE.fullmatch(i):
                raise ValueError(f"{_short(i)} is not a capacity reservation id (cr- and 8 to 17 hex digits)")
        if len(set(v)) != len(v):
            raise ValueError("lists a reservation id twice")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for k, val in v.items():
            if not TAG_KEY_RE.fullmatch(k) or k.lower().startswith("aws:"):
                raise ValueError(f"tag key {_short(k)} is not a valid AWS tag key")
            if not TAG_VALUE_RE.fullmatch(val):
                raise ValueError(f"tag value {_short(val)} of {_short(k)} is not a valid AWS tag value")
        return v

    @model_validator(mode="after")
    def _some(self) -> ReservationSpec:
        if not self.ids and not self.tags:
            raise ValueError("give reservation ids, tags, or both (or remove the reservation block)")
        return self

    def selector_terms(self) -> list[dict[str, Any]]:
        """NodeClass capacityReservationSelectorTerms (terms are ORed)."""
        terms: list[dict[str, Any]] = [{"id": i} for i in self.ids]
        if self.tags:
            terms.append({"tags": dict(self.tags)})
        return terms


class WorkerSpec(_Model):
    replicas: int = Field(default=1, ge=1, le=64)
    gpus: int = Field(default=1, ge=1, le=64)
    tensor_parallel: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _tp(self) -> WorkerSpec:
        if self.tensor_parallel > self.gpus:
            raise ValueError(
                f"tensorParallel {self.tensor_parallel} is more than gpus {self.gpus}; "
                "set tensorParallel to at most the worker's GPUs"
            )
        return self


class ServingSpec(_Model):
    mode: Mode
    instance_type: str
    model: str
    worker: WorkerSpec | None = None
    prefill: WorkerSpec | None = None
    decode: WorkerSpec | None = None
    graph_name: str | None = None
    privileged: bool = False

    @field_validator("instance_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if not INSTANCE_TYPE_RE.fullmatch(v):
            raise ValueError("must be an EC2 instance type such as g6e.2xlarge")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not MODEL_RE.fullmatch(v):
            raise ValueError("must be a Hugging Face model id such as Qwen/Qwen3-0.6B")
        return v

    @field_validator("graph_name")
    @classmethod
    def _graph(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.fullmatch(v):
            raise ValueError("must match [a-z][a-z0-9-]{0,30} and not end in '-'")
        return v

    @property
    def family(self) -> str:
        return self.instance_type.split(".", 1)[0]

    def workers(self) -> dict[str, WorkerSpec]:
        """Role -> spec for the worker services of this mode."""
        if self.mode is Mode.AGG:
            return {"worker": self.worker or WorkerSpec()}
        return {"prefill": self.prefill or WorkerSpec(), "decode": self.decode or WorkerSpec()}


class DynamoSpec(_Model):
    release: str = "1.0.0"
    namespace: str = "dynamo-system"

    @field_validator("release")
    @classmethod
    def _release(cls, v: str) -> str:
        if not RELEASE_RE.fullmatch(str(v)):
            raise ValueError("must be a release version such as 1.0.0")
        return v

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        if not NAMESPACE_RE.fullmatch(v):
            raise ValueError("must be a Kubernetes namespace name (lowercase letters, digits, '-')")
        return v


class StorageSpec(_Model):
    efs: bool = True
    download_memory: str | None = None
    xet_high_performance: bool = True

    @field_validator("download_memory")
    @classmethod
    def _mem(cls, v: str | None) -> str | None:
        if v is not None and not MEMORY_RE.fullmatch(v):
            raise ValueError("must be a memory size such as 16Gi or 512Mi (or null to size it from the model)")
        return v


class Plan(_Model):
    api_version: Literal["dynamo-wizard/v1"] = Field(alias="apiVersion")
    kind: Literal["Plan"]
    deployment: str
    region: str
    zones: tuple[str, ...] = ()
    cluster: ClusterSpec = ClusterSpec()
    gpu: GpuSpec
    reservation: ReservationSpec | None = None
    serving: ServingSpec
    dynamo: DynamoSpec = DynamoSpec()
    storage: StorageSpec = StorageSpec()

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError("must match [a-z][a-z0-9-]{0,30}: a lowercase letter, then lowercase letters, digits or "
                             "'-', not ending in '-'")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not REGION_RE.fullmatch(v):
            raise ValueError("must be an AWS region such as us-east-1")
        return v

    @model_validator(mode="after")
    def _consistency(self) -> Plan:
        problems: list[str] = []
        for z in self.zones:
            if not (z.startswith(self.region) and re.fullmatch(r"[a-z]", z[len(self.region):] or "")):
                problems.append(f"zones: {_short(z)} is not a zone of {self.region}; use names like {self.region}a")
        if len(set(self.zones)) != len(self.zones):
            problems.append("zones: a zone is listed twice; list each zone once")
        s = self.serving
        if s.family not in self.gpu.families:
            problems.append(
                f"serving.instanceType: {_short(s.instance_type)} is of family {_short(s.family)}, which is not in "
                f"gpu.families {_short(list(self.gpu.families))}; add {_short(s.family)} to gpu.families"
            )
        if s.mode is Mode.AGG:
            if s.prefill is not None or s.decode is not None:
                problems.append("serving: prefill/decode are for disagg modes; use serving.worker with mode agg")
        else:
            if s.worker is not None:
                problems.append(f"serving.worker: mode {s.mode.value} uses serving.prefill and serving.decode instead")
        if self.reservation is None and not self.gpu.capacity_types:
            problems.append("gpu.capacityTypes: needs on-demand or spot when no reservation is set")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # Convenience ----------------------------------------------------------------------------------

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or self.deployment

    @property
    def namespace(self) -> str:
        return self.dynamo.namespace

    @property
    def graph_name(self) -> str:
        """The DynamoGraphDeployment name: unique per mode (the guide reused `vllm-disagg` for three)."""
        if self.serving.graph_name:
            return self.serving.graph_name
        name = f"{self.deployment}-{self.serving.mode.value}"
        if len(name) > GRAPH_NAME_MAX:  # the operator derives 63-character names from it; keep room
            name = f"{self.deployment}-{_MODE_SHORT[self.serving.mode]}"
        return name

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        if self.reservation is None:
            data.pop("reservation", None)
        serving = data["serving"]
        for role in ("worker", "prefill", "decode"):
            if serving.get(role) is None:
                serving.pop(role, None)
        if serving.get("graphName") is None:
            serving.pop("graphName", None)
        # Keep the documented field order.
        order = ["apiVersion", "kind", "deployment", "region", "zones", "cluster", "gpu", "reservation",
                 "serving", "dynamo", "storage"]
        data["zones"] = list(data["zones"])
        return {k: data[k] for k in order if k in data}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif isinstance(p, str) and not p.startswith(("function-", "literal[", "union[", "str", "int")):
            # A key as the user wrote it may hold anything (a newline, an escape sequence, a megabyte):
            # one that is not a plain name is shown quoted and bounded, so a message stays one safe line.
            name = p if p == "apiVersion" else to_camel(p) if _PLAIN_KEY.fullmatch(p) and len(p) <= 60 else _short(p)
            parts.append(("." if parts else "") + name)
    return "".join(parts) or "plan"


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Bounded: a hostile value (a billion-laughs alias tree, a 5,000-digit integer) is never rendered whole, so
# a message about it costs microseconds and cannot fail (repr of a huge int raises ValueError).
class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        return f"<a {x.bit_length()}-bit integer>" if x.bit_length() > 128 else repr(x)


_SHORT_REPR = _ShortRepr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxset = _SHORT_REPR.maxdict = 4
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60


def _short(value: Any) -> str:
    if isinstance(value, str):
        text = repr(value[:200])
    elif isinstance(value, (float, bool)) or value is None:
        text = repr(value)
    else:
        text = _SHORT_REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_FIXES = {
    "extra_forbidden": "remove it or check its spelling against docs/plan-format.md",
    "missing": "add it (see docs/plan-format.md)",
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "string_type": "use a string",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
    "too_short": "give at least one value",
    "too_long": "give fewer values",
}


def _problems(err: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        field = _loc(tuple(e.get("loc", ())))
        kind = e.get("type", "")
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if kind == "model_type" or (kind == "value_error" and "\n" in msg):
            pass
        if kind == "value_error" and "\n" in msg:
            for line in msg.split("\n"):
                f, _, rest = line.partition(": ")
                problems.append(Problem(f, rest))
            continue
        value = e.get("input")
        if kind == "extra_forbidden":
            problems.append(Problem(field, "unknown key", _FIXES[kind]))
        elif kind == "missing":
            problems.append(Problem(field, "is required", _FIXES[kind]))
        elif kind in ("literal_error", "enum"):
            problems.append(Problem(field, f"{_short(value)} is not allowed: {msg.lower()}"))
        else:
            problems.append(Problem(field, f"{_short(value)}: {msg}", _FIXES.get(kind, "")))
    return problems


# A plan holds a few dozen values. Counting a shared value (a YAML alias) each time it is reached, a
# billion-laughs alias holds 9**9: validators that render a bad value (Enum's own error message does) would
# take minutes on it, so such a mapping is refused before validation.
MAX_PLAN_VALUES = 10_000


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _too_many_values(data: Any) -> bool:
    stack: list[Any] = [data]
    count = 1
    while stack:
        node = stack.pop()
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        count += len(children)
        if count > MAX_PLAN_VALUES:
            return True
        stack.extend(c for c in children if isinstance(c, _CONTAINERS))
    return False


def plan_from_dict(data: Any) -> Plan:
    if not isinstance(data, dict):
        raise PlanError([Problem("plan", f"expected a YAML mapping, got {type(data).__name__}",
                                 "start the file with 'apiVersion: dynamo-wizard/v1' and 'kind: Plan'")])
    if _too_many_values(data):
        raise PlanError([Problem("plan", f"holds more than {MAX_PLAN_VALUES:,} values (counting each use of a "
                                 "YAML alias)", "write the plan out plainly: a plan has a few dozen values")])
    for key in data:
        if not isinstance(key, str):
            raise PlanError([Problem("plan", f"key {_short(key)} is not a string", "use names from docs/plan-format.md")])
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        raise PlanError(_problems(err)) from None
    except (TypeError, ValueError, RecursionError) as err:  # hostile input pydantic did not wrap
        raise PlanError([Problem("plan", f"cannot be read: {err}", "check the file against docs/plan-format.md")]) from None


# libyaml when present: ten times faster, and it bounds flow nesting (PyYAML's pure-Python scanner is quadratic
# in it: 20 KB of '[' took seconds, 100 KB minutes). Same safe constructors either way.
_PLAN_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_plan(text: str) -> Plan:
    try:
        data = yaml.load(text, Loader=_PLAN_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PlanError([Problem("plan", f"is not valid YAML{where}", "fix the YAML syntax")]) from None
    except (RecursionError, ValueError) as err:
        raise PlanError([Problem("plan", f"cannot be read: {err}", "fix the YAML")]) from None
    return plan_from_dict(data)


def load_plan(path: str | Path) -> Plan:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([Problem("plan", f"no file at {p}", "give the path of a plan file")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError([Problem("plan", f"cannot read {p}: {err}", "give a readable UTF-8 plan file")]) from None
    return parse_plan(text)


def save_plan(plan: Plan, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(plan.to_yaml(), encoding="utf-8")
    tmp.replace(p)
    return p
