"""A seeded generator of hostile plans and answers, and the property every one of them must satisfy.

Seeded (random.Random), not hypothesis: ten thousand examples must run in seconds, and a failure names its
seed and index, which regenerate the exact input (`Gen(seed).example(kind, index)`).

The property (`Pipeline.run`): every input goes through the product's own path (parse_plan or
plan_from_dict, then render_and_check: the plan rules, render_all, validate_rendered, check_rendered, the
runbook) and ends in exactly one of
- a PlanError whose problems are short, single-line, printable messages (what is wrong and the fix);
- rule errors, and then nothing to write (`outputs() == []`);
- a full set of files that (re-read from the very text that would be written) equal what was rendered,
  validate against the upstream schemas, and whose plan.yaml reads back as the same plan.
Anything else (an exception, a hang of seconds, a control character or a traceback in a message) fails.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import re
import reprlib
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dynamo_wizard.core.catalog import Catalog, load_catalog
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.plan import Plan, plan_from_dict
from dynamo_wizard.core.validate import render_and_check, validate_documents
from dynamo_wizard.tui.answers import Answers

from ..reference import SHARED  # the same directory as the shared_reference fixture

ROOT = Path(__file__).resolve().parents[2]
CATALOG: Catalog = load_catalog()
EXAMPLES = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples").glob("*.yaml"))}

try:
    _FAST_LOADER: Any = yaml.CSafeLoader
    _FAST_DUMPER: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _FAST_LOADER, _FAST_DUMPER = yaml.SafeLoader, yaml.SafeDumper

# A message line may be long enough to say what is wrong, never a dump of the input.
MAX_PROBLEM_LINE = 1000
# No input may take long to be answered (a billion-laughs alias once took minutes). CPU seconds, so that a busy
# machine does not make a fast answer look slow; caches are warmed first (`Pipeline.warm_up`).
MAX_CPU_SECONDS_PER_INPUT = 2.0
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")  # C0 (tab aside), DEL and CSI: no terminal injection


# ---------------------------------------------------------------------------------------------------
# Values

NASTY_STRINGS: tuple[str, ...] = (
    # YAML syntax where a name goes
    "a: b", "- x", "{x: y}", "[1, 2]", "&anchor", "*alias", "? key", "|", ">-", "%YAML 1.1", "---", "...",
    "!!python/object/apply:os.system ['id']", "!!binary aGVsbG8=", "'q'", '"dq"', "#comment", ": ", "a #b",
    "<<: *base", "key: &x [*x]",
    # scalars YAML 1.1 reads as something else
    "null", "~", "NULL", "yes", "no", "on", "off", "y", "n", "True", "0x1F", "0o17", "0b101", "1e9", ".inf",
    "-.inf", ".nan", "1_000", "1.34", "01.34", "1.340", "12:30:00", "2026-11-28",
    # unicode
    "ünïcødé", "😀", "ｄｅｍｏ", "dеmo", "demo\u200b", "e\u0301", "\u202edemo", "ı", "ß", "日本語", "\ufeffdemo",
    "\U0001f4a9" * 40,
    # control characters and terminal escapes
    "\x00", "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "\r", "\x7f", "\t", "\n", "line\nkind: Secret", "\x9b2J",
    # shell and paths
    "$(reboot)", "`id`", "; rm -rf /", "${HF_TOKEN}", "&& curl x | sh", "../../etc/passwd", "/", "C:\\x", "~root",
    # near-valid names and values
    "demo-", "-demo", "Demo", "demo_1", "d", "a" * 31, "a" * 32, "1demo", " us-east-1", "us-east-1 ", "US-EAST-1",
    "us-east-1\n", "us-east-1z", "us-gov-west-1", "cn-north-1", "g6e", "p6", "p5.48xlarge", "g6e.2xlarge ",
    "p5.48XLARGE", "cr-0123456789abcdef0", "cr-XYZ", "Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B/extra", "Qwen",
    "dynamo-system", "kube-system", "default", "1.0.0", "9.9.9", "1.0", "16Gi", "0Gi", "16GB", "-1Gi",
    "999999Gi", "agg", "AGG", "disagg", "--model", "on-demand", "spot", "reserved",
    # size
    "", " ", "a" * 64, "a" * 300, "x" * 10_000,
)
INTS: tuple[int, ...] = (0, 1, -1, 2, 8, 63, 64, 65, 1000, 2**31, 2**63, -(2**63), 10**30, 10**100, 10**5000)
FLOATS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.34, 1.3400001, 64.0, 1e308, float("inf"), float("-inf"), float("nan"),
                             -0.0, 1e-300)


def billion_laughs(levels: int = 9, width: int = 9) -> Any:
    """The classic alias bomb as the YAML loader builds it: one shared list per level (width**levels leaves)."""
    node: Any = ["lol"] * width
    for _ in range(levels - 1):
        node = [node] * width
    return node


def deep(depth: int, leaf: Any = "x", kind: str = "list") -> Any:
    node = leaf
    for _ in range(depth):
        node = [node] if kind == "list" else {"k": node}
    return node


def recursive_list() -> list[Any]:
    node: list[Any] = []
    node.append(node)
    return node


def recursive_dict() -> dict[str, Any]:
    node: dict[str, Any] = {}
    node["self"] = node
    return node


# Every field of the format (docs/plan-format.md) and some that are not, as paths into the mapping.
PATHS: tuple[tuple[str, ...], ...] = (
    ("apiVersion",), ("kind",), ("deployment",), ("region",), ("zones",), ("cluster",), ("cluster", "name"),
    ("cluster", "kubernetesVersion"), ("gpu",), ("gpu", "families"), ("gpu", "capacityTypes"), ("reservation",),
    ("reservation", "ids"), ("reservation", "tags"), ("reservation", "fallback"), ("serving",),
    ("serving", "mode"), ("serving", "instanceType"), ("serving", "model"), ("serving", "worker"),
    ("serving", "worker", "replicas"), ("serving", "worker", "gpus"), ("serving", "worker", "tensorParallel"),
    ("serving", "prefill"), ("serving", "decode"), ("serving", "prefill", "replicas"), ("serving", "decode", "gpus"),
    ("serving", "prefill", "tensorParallel"), ("serving", "graphName"), ("serving", "privileged"), ("dynamo",),
    ("dynamo", "release"), ("dynamo", "namespace"), ("storage",), ("storage", "efs"), ("storage", "downloadMemory"),
    ("storage", "xetHighPerformance"),
    # not in the format: unknown keys, other spellings, YAML-ish keys
    ("unknownTopLevel",), ("serving", "unknownField"), ("Deployment",), ("instance_type",),
    ("serving", "instance_type"), ("gpu", "families", "extra"), ("<<",), ("apiversion",), ("",),
)


@dataclass
class Gen:
    """Hostile inputs from one seed; `example(kind, i)` regenerates input i of a kind exactly."""

    seed: int
    r: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.r = random.Random(self.seed)

    def reseed(self, kind: str, index: int) -> None:
        self.r = random.Random(f"{self.seed}:{kind}:{index}")

    # -- values ------------------------------------------------------------------------------------

    def text(self) -> str:
        r = self.r
        pick = r.random()
        if pick < 0.55:
            return r.choice(NASTY_STRINGS)
        if pick < 0.75:
            alphabet = string.ascii_lowercase + string.digits + "-._/:"
            return "".join(r.choice(alphabet) for _ in range(r.randint(0, 40)))
        if pick < 0.9:  # arbitrary code points (not lone surrogates: they cannot be written as UTF-8)
            return "".join(chr(r.choice([r.randint(0x20, 0x7e), r.randint(0xa0, 0xd7ff),
                                         r.randint(0xe000, 0x10ffff), r.randint(0, 0x1f)]))
                           for _ in range(r.randint(1, 20)))
        return r.choice(NASTY_STRINGS) + r.choice(NASTY_STRINGS)

    def scalar(self) -> Any:
        r = self.r
        pick = r.random()
        if pick < 0.45:
            return self.text()
        if pick < 0.65:
            return r.choice(INTS) * r.choice((1, 1, -1))
        if pick < 0.75:
            return r.choice(FLOATS)
        if pick < 0.85:
            return r.choice((True, False))
        if pick < 0.9:
            return None
        return r.choice((b"\x00\xff\xfe", bytes(range(256)), b""))

    def value(self, depth: int = 0) -> Any:
        r = self.r
        pick = r.random()
        if depth > 2 or pick < 0.6:
            return self.scalar()
        if pick < 0.72:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        if pick < 0.84:
            keys: list[Any] = [self.text() for _ in range(r.randint(0, 3))]
            if r.random() < 0.2:
                keys.append(r.choice((1, 1.5, True, None)))
            return {k: self.value(depth + 1) for k in keys}
        specials: list[Callable[[], Any]] = [
            list, dict, lambda: [None], lambda: [[]], lambda: {"": ""}, lambda: ["x"] * 300,
            lambda: billion_laughs(r.randint(3, 9)), lambda: deep(r.randint(50, 500)),
            lambda: deep(r.randint(50, 500), kind="dict"), recursive_list, recursive_dict,
            lambda: {i: i for i in range(30)}, lambda: set("abc"), lambda: ("tuple", 1),
        ]
        return r.choice(specials)()

    # -- plans -------------------------------------------------------------------------------------

    def name(self) -> str:
        r = self.r
        length = r.choice((1, 2, 8, 20, 30, 31))
        body = [r.choice(string.ascii_lowercase)] + [r.choice(string.ascii_lowercase + string.digits + "-")
                                                     for _ in range(length - 1)]
        if body[-1] == "-":
            body[-1] = r.choice(string.ascii_lowercase + string.digits)
        return "".join(body)

    def worker(self, gpus_max: int) -> dict[str, Any]:
        r = self.r
        gpus = r.choice([g for g in (1, 2, 4, 8) if g <= max(gpus_max, 1)] or [1])
        return {"replicas": r.choice((1, 1, 2, 3, 64)), "gpus": gpus, "tensorParallel": gpus}

    def plausible_plan(self) -> dict[str, Any]:
        """A plan drawn from the format's own ranges and the catalog: mostly accepted, so rendering is hit."""
        r = self.r
        itype_name = r.choice(sorted(CATALOG.instance_types))
        itype = CATALOG.instance_types[itype_name]
        family = itype_name.split(".")[0]
        gpus = int(getattr(itype, "gpus", 1) or 1)
        mode = r.choice(("agg", "agg", "disagg-tcp", "disagg-efa"))
        small_models = [m for m in sorted(CATALOG.models) if "0.6B" in m or "32B" in m]
        serving: dict[str, Any] = {"mode": mode, "instanceType": itype_name,
                                   "model": r.choice(small_models if r.random() < 0.8 else sorted(CATALOG.models))}
        if mode == "agg":
            serving["worker"] = self.worker(gpus)
        else:
            serving["prefill"], serving["decode"] = self.worker(gpus), self.worker(gpus)
        if r.random() < 0.3:
            serving["graphName"] = self.name()
        if r.random() < 0.2:
            serving["privileged"] = True
        region = r.choice(("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"))
        data: dict[str, Any] = {
            "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": self.name(), "region": region,
            "gpu": {"families": sorted({family, *r.sample(sorted(CATALOG.families), r.randint(0, 2))}),
                    "capacityTypes": r.choice((["on-demand"], ["spot"], ["on-demand", "spot"]))},
            "serving": serving,
        }
        if r.random() < 0.5:
            data["zones"] = r.sample([region + z for z in "abcd"], r.randint(1, 3))
        if r.random() < 0.5:
            data["cluster"] = {"kubernetesVersion": r.choice(("1.29", "1.31", "1.33", "1.34", "1.35"))}
            if r.random() < 0.3:
                data["cluster"]["name"] = self.name().capitalize()
        if r.random() < 0.5:
            data["dynamo"] = {"release": r.choice(("1.0.0", "1.0.1")),
                              "namespace": r.choice(("dynamo-system", "team-a", "a", "x" * 63, self.name()))}
        if r.random() < 0.5:
            data["storage"] = {"efs": r.random() < 0.7,
                               "downloadMemory": r.choice((None, "512Mi", "16Gi", "64Gi", "999999Gi")),
                               "xetHighPerformance": r.random() < 0.5}
        if r.random() < 0.3:
            reservation: dict[str, Any] = {"fallback": r.choice(("none", "on-demand", "on-demand-and-spot"))}
            if r.random() < 0.7:
                reservation["ids"] = ["cr-" + "".join(r.choice("0123456789abcdef") for _ in range(17))]
            if r.random() < 0.5 or "ids" not in reservation:
                reservation["tags"] = {r.choice(("team", "k:8s/x", "a.b=c", "@x", "+")):
                                       r.choice(("ml", "", "a b", "x" * 256, "=/:+-@"))}
            data["reservation"] = reservation
        return data

    def base_plan(self) -> dict[str, Any]:
        if self.r.random() < 0.4:
            return copy.deepcopy(self.r.choice(list(EXAMPLES.values())))
        return self.plausible_plan()

    def in_range_value(self, path: tuple[str, ...]) -> tuple[bool, Any]:
        """(True, a value the format allows at `path`, often at the edge of its range), or (False, None)."""
        r = self.r
        hex17 = "".join(r.choice("0123456789abcdef") for _ in range(r.choice((8, 17))))
        values: dict[tuple[str, ...], Callable[[], Any]] = {
            ("deployment",): self.name,
            ("cluster", "name"): lambda: r.choice(string.ascii_letters) + "".join(
                r.choice(string.ascii_letters + string.digits + "-") for _ in range(r.choice((0, 5, 99)))),
            ("cluster", "kubernetesVersion"): lambda: r.choice(("1.29", "1.30", "1.31", "1.32", "1.33", "1.34",
                                                               "1.35", "1.99", "1.10", 1.34)),
            ("serving", "graphName"): self.name,
            ("serving", "worker", "replicas"): lambda: r.choice((1, 2, 63, 64)),
            ("serving", "prefill", "replicas"): lambda: r.choice((1, 2, 63, 64)),
            ("serving", "privileged"): lambda: r.random() < 0.5,
            ("dynamo", "namespace"): lambda: r.choice(("a", "x" * 63, "team-7", "0ns", self.name())),
            ("dynamo", "release"): lambda: r.choice(("1.0.0", "1.0.1", "1.1.0", "0.9.9")),
            ("storage", "downloadMemory"): lambda: r.choice((None, "1Mi", "999999Mi", "1Gi", "64Gi", "999999Gi")),
            ("storage", "efs"): lambda: r.random() < 0.5,
            ("storage", "xetHighPerformance"): lambda: r.random() < 0.5,
            ("reservation",): lambda: {"ids": [f"cr-{hex17}"], "fallback": r.choice(("none", "on-demand",
                                                                                      "on-demand-and-spot"))},
            ("reservation", "tags"): lambda: {r.choice(("team", "a" * 128, "k:8s/x=y", "@+-.")):
                                              r.choice(("", "x" * 256, "a b c", "ü", "=/:+-@"))},
            ("gpu", "capacityTypes"): lambda: r.choice((["on-demand"], ["spot"], ["spot", "on-demand"])),
        }
        make = values.get(path)
        return (True, make()) if make is not None else (False, None)

    def mutate(self, data: dict[str, Any]) -> dict[str, Any]:
        r = self.r
        for _ in range(r.randint(1, 3)):
            path = r.choice(PATHS)
            node: Any = data
            for key in path[:-1]:
                if not isinstance(node, dict):
                    break
                child = node.get(key)
                if not isinstance(child, dict):
                    child = {} if r.random() < 0.8 else self.value()
                    node[key] = child
                node = child
            if not isinstance(node, dict):
                continue
            action = r.random()
            if action < 0.2:
                node.pop(path[-1], None)
            elif action < 0.3 and isinstance(node.get(path[-1]), list) and node[path[-1]]:
                node[path[-1]] = node[path[-1]] * r.choice((2, 50))  # duplicates, too many
            else:
                node[path[-1]] = self.value()
        if r.random() < 0.05:
            return self.value()  # type: ignore[no-any-return]  # the whole plan replaced by anything
        return data

    IN_RANGE_PATHS: tuple[tuple[str, ...], ...] = (
        ("deployment",), ("cluster", "name"), ("cluster", "kubernetesVersion"), ("serving", "graphName"),
        ("serving", "worker", "replicas"), ("serving", "prefill", "replicas"), ("serving", "privileged"),
        ("dynamo", "namespace"), ("dynamo", "release"), ("storage", "downloadMemory"), ("storage", "efs"),
        ("storage", "xetHighPerformance"), ("reservation",), ("reservation", "tags"), ("gpu", "capacityTypes"))

    def in_range(self, data: dict[str, Any]) -> dict[str, Any]:
        """1 to 3 values changed within the format's ranges, often to their edges: the plan stays valid (or
        meets a rule), so these render, each one different."""
        for _ in range(self.r.randint(1, 3)):
            path = self.r.choice(self.IN_RANGE_PATHS)
            _, value = self.in_range_value(path)
            if path[:2] == ("serving", "worker") and data.get("serving", {}).get("mode") != "agg":
                continue
            if path[:2] == ("serving", "prefill") and data.get("serving", {}).get("mode") == "agg":
                continue
            node = data
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
        return data

    def plan_dict(self) -> Any:
        """A mapping for plan_from_dict: 5% untouched, 12% changed within range (these mostly render, each
        different), 83% mutated with hostile values."""
        data = self.base_plan()
        pick = self.r.random()
        if pick < 0.05:
            return data
        if pick < 0.17:
            return self.in_range(data)
        return self.mutate(data)

    # -- texts -------------------------------------------------------------------------------------

    def dump(self, data: Any) -> str:
        r = self.r
        try:
            return yaml.dump(data, Dumper=_FAST_DUMPER, allow_unicode=r.random() < 0.5,
                             default_flow_style=r.choice((None, True, False)), sort_keys=r.random() < 0.3,
                             width=r.choice((80, 10_000)))
        except (yaml.YAMLError, ValueError, RecursionError, TypeError):
            return "{}"  # not representable as YAML (a 5,000-digit int, a self-reference): the texts cover those

    def plan_text(self) -> str:
        """A plan file's text: dumped plans, then broken at the text level in the ways people and tools do."""
        r = self.r
        pick = r.random()
        if pick < 0.08:
            return self.special_text()
        data = self.plan_dict()
        text = self.dump(data)
        if pick < 0.35:
            return text  # a well-formed YAML file, hostile only in its values
        lines = text.split("\n")
        for _ in range(r.randint(1, 3)):
            op = r.random()
            lines = lines or [""]
            at = r.randrange(len(lines))
            if op < 0.2:
                lines.insert(at, r.choice(NASTY_STRINGS))
            elif op < 0.35:
                lines[at] = lines[at] + " " + r.choice(NASTY_STRINGS).replace("\n", " ")
            elif op < 0.45:
                del lines[at]
            elif op < 0.55:
                lines[at] = "\t" + lines[at]
            elif op < 0.65:
                lines.insert(at, lines[at])  # a duplicated key
            elif op < 0.72:
                cut = r.randrange(len(lines[at]) + 1)
                lines[at] = lines[at][:cut]
            elif op < 0.8:
                key = r.choice(("deployment", "region", "zones", "gpu", "serving", "kind", "unknown"))
                lines.append(f"{key}: {r.choice(('!!binary aGk=', '!!set {a, b}', '!!python/name:os.system', '!!float 1', '!!timestamp 2026-01-01', '!!str 1', '&x [1]', '*undefined', '!!map {}'))}")
            elif op < 0.88:
                lines[at] = lines[at].replace(":", r.choice(("", " :", "::", ": :", "=")), 1)
            else:
                lines[at] = "".join(r.choice(("{", "}", "[", "]", "'", '"', "&", "*", "!", "%", "@", "`", "|", ">"))
                                    for _ in range(r.randint(1, 6))) + lines[at]
        text = "\n".join(lines)
        if r.random() < 0.1:
            text = "\ufeff" + text
        if r.random() < 0.1:
            text = text.replace("\n", "\r\n")
        if r.random() < 0.05:
            text = text + "\n---\n" + text  # two documents
        return text

    def special_text(self) -> str:
        r = self.r
        base = self.dump(self.base_plan())
        choices: list[Callable[[], str]] = [
            lambda: _bomb_text(r.randint(3, 9)) + base + r.choice(("zones: *l\n", "unknown: *l\n", "gpu: *l\n",
                                                                   "serving: {mode: agg, model: *l}\n")),
            lambda: base + "zones: " + "[" * r.randint(100, 20_000) + "]" * r.randint(0, 20_000) + "\n",
            lambda: base + "unknown: " + "{a: " * r.randint(100, 5000) + "1" + "}" * r.randint(0, 5000) + "\n",
            lambda: "".join(chr(r.randrange(256)) for _ in range(r.randint(1, 2000))),
            lambda: base.replace("replicas: 1", "replicas: " + "9" * r.choice((20, 400, 5000))),
            lambda: base.replace("replicas: 1", "replicas: " + r.choice(("1e999", "-1", ".inf", ".nan", "0x40", "1.5", "'1'"))),
            lambda: "",
            lambda: "# only a comment\n",
            lambda: "---\n...\n",
            lambda: "- " + base.replace("\n", "\n  "),
            lambda: "a: &a [*a]\n" + base,
            lambda: "base: &b {deployment: x}\n<<: *b\n" + base,
            lambda: base * r.randint(2, 50),
            lambda: base + "\0" + base,
            lambda: "apiVersion: dynamo-wizard/v1\nkind: Plan\n" + ("x" * 200_000) + ": 1\n",
        ]
        return r.choice(choices)()

    # -- answers -----------------------------------------------------------------------------------

    def answer_value(self, typical: Any) -> Any:
        """A hostile value of the type the screens produce for that field (str, int, bool, list, dict)."""
        r = self.r
        if isinstance(typical, bool):
            return r.random() < 0.5
        if isinstance(typical, int):  # no int of more than 4,300 digits: neither int("...") nor YAML can make one
            return r.choice(INTS[:-1]) * r.choice((1, -1)) if r.random() < 0.7 else r.randint(-5, 70)
        if isinstance(typical, list):
            return [self.text() for _ in range(r.choice((0, 1, 2, 5, 30)))]
        if isinstance(typical, dict):
            return {self.text(): self.text() for _ in range(r.choice((0, 1, 3)))}
        return self.text()

    def answers(self) -> Answers:
        """Answers as the TUI can produce them: defaults, a plan's answers, then a few fields typed badly."""
        r = self.r
        if r.random() < 0.12:
            try:
                base = Answers.from_plan(plan_from_dict(self.plausible_plan()))
            except PlanError:
                base = Answers()
        else:
            base = Answers()
        changes: dict[str, Any] = {}
        if r.random() < 0.2:  # in range, as the screens offer: the answers make a plan (or meet a rule)
            itype = r.choice(sorted(CATALOG.instance_types))
            in_range: dict[str, Callable[[], Any]] = {
                "deployment": self.name, "replicas": lambda: r.randint(1, 64),
                "prefill_replicas": lambda: r.randint(1, 64), "decode_replicas": lambda: r.randint(1, 64),
                "worker_gpus": lambda: r.choice((1, 2, 4, 8)), "privileged": lambda: r.random() < 0.5,
                "mode": lambda: r.choice(("agg", "disagg-efa", "disagg-tcp")),
                "model": lambda: r.choice(sorted(CATALOG.models)),
                "namespace": lambda: r.choice(("a", "x" * 63, self.name())),
                "capacity_types": lambda: r.choice((["on-demand"], ["spot"], ["on-demand", "spot"])),
                "instance_type": lambda: itype, "families": lambda: [itype.split(".")[0]],
                "region": lambda: r.choice(("us-east-1", "us-west-2", "eu-west-1")),
            }
            for name in r.sample(sorted(in_range), r.randint(1, 4)):
                changes[name] = in_range[name]()
            return dataclasses.replace(base.copy(), **changes)
        fields = list(vars(base))
        for _ in range(r.choice((0, 1, 2, 2, 3, 3))):
            name = r.choice(fields)
            if name == "capacity":
                changes[name] = r.choice(("none", "ids", "tags"))
            elif name == "mode":
                changes[name] = r.choice(("agg", "disagg-efa", "disagg-tcp", self.text()))
            else:
                changes[name] = self.answer_value(getattr(base, name))
        return dataclasses.replace(base.copy(), **changes)

    def answers_file(self) -> Any:
        """What a user may put in `dynamo-wizard plan --answers FILE` (keys of commands.plan_prompts): a complete
        plan-only set of answers, then some answers hostile, missing, unknown or of the wrong type."""
        r = self.r
        data: dict[Any, Any] = {
            "planOnly": True, "deployment": self.name(), "region": r.choice(("us-east-1", "us-west-2")),
            "instanceType": r.choice(("g6e.2xlarge", "g6e.12xlarge", "p5.48xlarge", "g5.xlarge")), "families": [],
            "capacity": "none", "capacityTypes": r.choice(("on-demand,spot", "on-demand", "spot")),
            "mode": r.choice(("agg", "disagg-tcp", "disagg-efa")), "model": "Qwen/Qwen3-0.6B",
            "replicas": r.randint(1, 3), "prefillReplicas": 1, "decodeReplicas": 1, "privileged": False,
        }
        keys = list(data) + ["reservationIds", "reservationTags", "fallback"]
        for _ in range(r.choice((0, 1, 1, 2, 3))):
            key = r.choice(keys + ["unknown", "Deployment", "instance_type", ""])
            action = r.random()
            if action < 0.2:
                data.pop(key, None)
            elif action < 0.6:
                data[key] = self.value()
            else:
                data[key] = self.answer_value(data.get(key, ""))
        return data if r.random() > 0.03 else self.value()


def _bomb_text(levels: int) -> str:
    names = "abcdefghijk"
    lines = ["x-bomb:", f"  - &{names[0]} [" + ", ".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"  - &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]")
    lines.append(f"  - &l [*{names[levels - 1]}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# The property


class PropertyFailure(AssertionError):
    pass


def check_problem_lines(lines: list[str], where: str) -> None:
    if not lines:
        raise PropertyFailure(f"{where}: an error with no problem lines")
    for line in lines:
        if not isinstance(line, str) or not line.strip():
            raise PropertyFailure(f"{where}: an empty problem line")
        if len(line) > MAX_PROBLEM_LINE:
            raise PropertyFailure(f"{where}: a problem line of {len(line)} characters: {line[:200]!r}…")
        if "\n" in line:
            raise PropertyFailure(f"{where}: a problem line spans lines: {line[:200]!r}")
        if _CONTROL.search(line):
            raise PropertyFailure(f"{where}: a control character in a problem line: {line[:200]!r}")
        if "Traceback" in line or "object at 0x" in line:
            raise PropertyFailure(f"{where}: internals in a problem line: {line[:200]!r}")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(k) + _strings(v)]
    if isinstance(node, (list, tuple)):
        return [s for v in node for s in _strings(v)]
    return []


def safe_relative(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


@dataclass
class Pipeline:
    """Runs inputs through the product and checks the property; counts outcomes."""

    schemas: Path = SHARED
    revalidate: bool = False  # validate the documents read back once more (the render command's files are)
    outcomes: Counter[str] = field(default_factory=Counter)
    _validated: set[str] = field(default_factory=set)
    _plans: dict[str, str] = field(default_factory=dict)

    @property
    def distinct_rendered(self) -> int:
        """Distinct plans rendered, validated and checked (the same plan twice is rendered once)."""
        return sum(1 for outcome in self._plans.values() if outcome == "rendered")

    def warm_up(self) -> None:
        """Load what the first render for each Kubernetes version loads (schemas, validators): not the input's
        cost, so not timed."""
        for version in ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35"):
            data = copy.deepcopy(EXAMPLES["agg"])
            data["cluster"] = {"kubernetesVersion": version}
            render_and_check(plan_from_dict(data), CATALOG, self.schemas)

    def run(self, load: Callable[[], Plan], where: str) -> str:
        started = time.thread_time()  # this thread's CPU: neither machine load nor other threads count
        outcome = self._run(load, where)
        elapsed = time.thread_time() - started
        if elapsed > MAX_CPU_SECONDS_PER_INPUT:
            raise PropertyFailure(f"{where}: took {elapsed:.1f} CPU seconds to answer ({outcome})")
        self.outcomes[outcome] += 1
        return outcome

    def _run(self, load: Callable[[], Plan], where: str) -> str:
        try:
            plan = load()
        except PlanError as err:
            check_problem_lines(err.lines(), where)
            return "rejected: plan"
        key = plan.model_dump_json()
        if key in self._plans:  # the same plan again (render_and_check is deterministic): the same verdict
            return self._plans[key]
        outcome = self._render(plan, where)
        self._plans[key] = outcome
        return outcome

    def _render(self, plan: Plan, where: str) -> str:
        for text in _strings(plan.to_dict()):
            if _CONTROL.search(text) or "\n" in text or "\t" in text:
                raise PropertyFailure(f"{where}: an accepted plan holds a control character: {text[:100]!r}")
        checked = render_and_check(plan, CATALOG, self.schemas)
        if checked.errors:
            if checked.files or checked.outputs():
                raise PropertyFailure(f"{where}: rule errors, yet files to write: {[str(p) for p in checked.errors]}")
            check_problem_lines([str(p) for p in checked.problems], where)
            if not all(p.fix for p in checked.errors):
                raise PropertyFailure(f"{where}: an error without a fix: {[str(p) for p in checked.errors]}")
            return "rejected: rules"
        self.check_outputs(plan, checked, where)
        return "rendered"

    def check_outputs(self, plan: Plan, checked: Any, where: str) -> None:
        outputs = checked.outputs()
        names = [name for name, _, _ in outputs]
        if not outputs or len(set(names)) != len(names):
            raise PropertyFailure(f"{where}: no files, or a name twice: {names}")
        if not {"plan.yaml", "runbook.sh"} <= set(names):
            raise PropertyFailure(f"{where}: plan.yaml or runbook.sh missing: {names}")
        for name in names:
            if not safe_relative(name):
                raise PropertyFailure(f"{where}: an output path that escapes the directory: {name!r}")
        rendered = {f.name: list(f.documents) for f in checked.files}
        docs: list[tuple[str, Any]] = []
        for name, text, _ in outputs:
            if name == "runbook.sh":
                if not text.startswith("#!") or "\x00" in text:
                    raise PropertyFailure(f"{where}: runbook.sh is not a script")
                continue
            loaded = [json.loads(text)] if name.endswith(".json") else \
                [d for d in yaml.load_all(text, Loader=_FAST_LOADER) if d is not None]
            if name == "plan.yaml":
                if len(loaded) != 1 or plan_from_dict(loaded[0]) != plan:
                    raise PropertyFailure(f"{where}: the written plan.yaml does not read back as the plan")
                continue
            if loaded != rendered.get(name):
                raise PropertyFailure(f"{where}: {name} as written does not read back as what was rendered")
            docs += [(name, d) for d in loaded]
        # The files read back equal what render_and_check validated; that it validated against the upstream
        # schemas (not only the core kinds) is in its coverage. The render command's files are validated again,
        # read back from disk (test_render_command_writes_a_full_valid_set_or_nothing).
        ran = " ".join(checked.coverage.ran)
        if "eksctl ClusterConfig against" not in ran or "DynamoGraphDeployment" not in ran:
            raise PropertyFailure(f"{where}: rendered without the upstream schemas: {checked.coverage.ran}")
        if self.revalidate:
            self.validate(docs, plan.cluster.kubernetes_version, where)

    def validate(self, docs: list[tuple[str, Any]], version: str, where: str) -> None:
        """validate_documents on every document not validated before (identical documents validate the same);
        a kustomization is checked with the files of its directory, which it names."""
        todo: list[tuple[str, Any]] = []
        keys: list[str] = []
        dirs_with_kustomization: set[str] = set()
        for name, doc in docs:
            key = f"{version}\0{name}\0{json.dumps(doc, sort_keys=True, default=str)}"
            if key in self._validated:
                continue
            todo.append((name, doc))
            keys.append(key)
            if isinstance(doc, dict) and doc.get("kind") == "Kustomization":
                dirs_with_kustomization.add(name.rsplit("/", 1)[0] if "/" in name else "")
        if not todo:
            return
        for name, doc in docs:  # a kustomization's resources must be in the same call
            folder = name.rsplit("/", 1)[0] if "/" in name else ""
            if folder in dirs_with_kustomization and (name, doc) not in todo:
                todo.append((name, doc))
        problems = validate_documents(todo, self.schemas, version)
        if problems:
            raise PropertyFailure(f"{where}: a rendered file is invalid: {[str(p) for p in problems][:5]}")
        self._validated.update(keys)


_DESCRIBE = reprlib.Repr()
_DESCRIBE.maxlevel, _DESCRIBE.maxlist, _DESCRIBE.maxdict, _DESCRIBE.maxstring = 4, 8, 12, 200
_DESCRIBE.maxlong, _DESCRIBE.maxother = 60, 200


def describe_input(value: Any, limit: int = 600) -> str:
    """A short, safe description of an input for a failure message (bounded, whatever the input)."""
    try:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = vars(value)
        text = value[:limit] if isinstance(value, str) else _DESCRIBE.repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"
