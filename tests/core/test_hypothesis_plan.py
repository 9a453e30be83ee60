"""Property-based tests: random and hostile values in plans (YAML syntax in names, unicode, huge numbers,
empty lists, wrong types) never give a traceback, and never lead to an invalid file being written.

Example counts are bounded to keep this file to a few seconds; the reliability suite runs far more.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamo_wizard.commands.render import run_render
from dynamo_wizard.core.catalog import load_catalog
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.plan import parse_plan, plan_from_dict
from dynamo_wizard.core.rules import check_plan, errors
from dynamo_wizard.core.validate import render_and_check, validate_documents

from ..reference import SHARED  # the same directory as the shared_reference fixture

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()
BASES = [yaml.safe_load((ROOT / "examples" / name).read_text())
         for name in ("agg.yaml", "disagg-efa.yaml", "disagg-tcp.yaml", "disagg-p5-reserved.yaml")]
SETTINGS = settings(max_examples=120, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY_STRINGS = [
    "a: b", "- x", "{x: y}", "[1, 2]", "&anchor", "*alias", "!!python/object/apply:os.system ['id']", "'q'", '"dq"',
    "null", "~", "yes", "no", "on", "1.34", "0x1F", "1e9", ": ", "#comment", "\n", "\t", "", " ", "ünïcødé", "😀",
    "a" * 300, "Qwen/Qwen3-0.6B\nkind: Secret", "${HF_TOKEN}", "$(reboot)", "`id`", "; rm -rf /", "../../etc/passwd",
    "cr-0123456789abcdef0", "g6e", "p6", "p5.48xlarge", "us-east-1", "us-east-1z", "dynamo-system", "1.0.0",
    "demo", "--model", "\x00", "\u202e", "K" * 64,
]
TEXT = st.one_of(st.sampled_from(NASTY_STRINGS), st.text(max_size=40))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                   st.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)

# Every field of the format (docs/plan-format.md), as paths into the plan mapping.
PATHS = [
    ("apiVersion",), ("kind",), ("deployment",), ("region",), ("zones",), ("cluster",), ("cluster", "name"),
    ("cluster", "kubernetesVersion"), ("gpu",), ("gpu", "families"), ("gpu", "capacityTypes"), ("reservation",),
    ("reservation", "ids"), ("reservation", "tags"), ("reservation", "fallback"), ("serving",), ("serving", "mode"),
    ("serving", "instanceType"), ("serving", "model"), ("serving", "worker"), ("serving", "prefill"),
    ("serving", "decode"), ("serving", "prefill", "replicas"), ("serving", "decode", "gpus"),
    ("serving", "prefill", "tensorParallel"), ("serving", "graphName"), ("serving", "privileged"), ("dynamo",),
    ("dynamo", "release"), ("dynamo", "namespace"), ("storage",), ("storage", "efs"), ("storage", "downloadMemory"),
    ("storage", "xetHighPerformance"), ("unknownTopLevel",), ("serving", "unknownField"),
]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any, delete: bool) -> None:
    node: Any = data
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def mutated_plans(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        _set(data, draw(st.sampled_from(PATHS)), draw(VALUE), delete=draw(st.booleans()) and draw(st.booleans()))
    return data


# Plans built from the format's own value ranges: mostly valid, so the render path is exercised hard.
NAME = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True)  # trailing "-" must be rejected clearly
WORKER = st.fixed_dictionaries({"replicas": st.integers(1, 64), "gpus": st.integers(1, 8)}).flatmap(
    lambda w: st.just({**w, "tensorParallel": w["gpus"]}))


@st.composite
def plausible_plans(draw: st.DrawFn) -> dict[str, Any]:
    itype = draw(st.sampled_from(sorted(CATALOG.instance_types)))
    family = itype.split(".")[0]
    families = draw(st.lists(st.sampled_from(sorted(CATALOG.families)), max_size=3, unique=True))
    mode = draw(st.sampled_from(["agg", "disagg-efa", "disagg-tcp"]))
    serving: dict[str, Any] = {"mode": mode, "instanceType": itype,
                               "model": draw(st.one_of(st.sampled_from(sorted(CATALOG.models)),
                                                       st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}/[A-Za-z0-9]"
                                                                     r"[A-Za-z0-9._-]{0,20}", fullmatch=True))),
                               "privileged": draw(st.booleans())}
    if mode == "agg":
        serving["worker"] = draw(WORKER)
    else:
        serving["prefill"], serving["decode"] = draw(WORKER), draw(WORKER)
    if draw(st.booleans()):
        serving["graphName"] = draw(NAME)
    region = draw(st.sampled_from(["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]))
    data: dict[str, Any] = {
        "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": draw(NAME), "region": region,
        "zones": draw(st.lists(st.sampled_from([region + z for z in "abcd"]), max_size=3, unique=True)),
        "cluster": {"kubernetesVersion": draw(st.sampled_from(["1.29", "1.31", "1.33", "1.34", "1.35"]))},
        "gpu": {"families": sorted({family, *families}),
                "capacityTypes": draw(st.sampled_from([["on-demand"], ["spot"], ["spot", "on-demand"]]))},
        "serving": serving,
        "dynamo": {"release": draw(st.sampled_from(["1.0.0", "1.0.1"])),
                   "namespace": draw(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True))},
        "storage": {"efs": draw(st.booleans()),
                    "downloadMemory": draw(st.one_of(st.none(), st.sampled_from(["512Mi", "4Gi", "16Gi", "64Gi"]))),
                    "xetHighPerformance": draw(st.booleans())},
    }
    if draw(st.booleans()):
        data["reservation"] = {
            "ids": draw(st.lists(st.from_regex(r"cr-[0-9a-f]{17}", fullmatch=True), max_size=2, unique=True)),
            "tags": draw(st.dictionaries(st.from_regex(r"[\w.:/=+@-]{1,20}", fullmatch=True).filter(
                lambda k: not k.lower().startswith("aws:")), st.from_regex(r"[\w .:/=+@-]{0,20}", fullmatch=True),
                max_size=2)),
            "fallback": draw(st.sampled_from(["none", "on-demand", "on-demand-and-spot"])),
        }
        if not data["reservation"]["ids"] and not data["reservation"]["tags"]:
            data["reservation"]["ids"] = ["cr-0123456789abcdef0"]
    return data


def _check_plan_data(data: Any) -> None:
    """The property: a clear PlanError, a clear rejection, or files that are all valid."""
    try:
        plan = plan_from_dict(data)
    except PlanError as err:
        assert err.problems
        for problem in err.problems:
            assert isinstance(problem.field, str) and problem.message
        return
    checked = render_and_check(plan, CATALOG, SHARED)
    if checked.errors:
        assert checked.files == () and checked.outputs() == []
        assert all(p.message and p.fix for p in checked.errors)
        # Rejected by the plan rules, never by a rendered file failing its schema (that would be a bug).
        assert errors(check_plan(plan, CATALOG)), [str(p) for p in checked.errors]
        return
    docs = []
    for name, text, _ in checked.outputs():
        if name == "runbook.sh":
            continue
        loaded = [json.loads(text)] if name.endswith(".json") else [d for d in yaml.safe_load_all(text) if d is not None]
        if name == "plan.yaml":
            assert plan_from_dict(loaded[0]) == plan  # the written plan reads back as the same plan
        else:
            docs += [(name, d) for d in loaded]
    assert validate_documents(docs, SHARED, plan.cluster.kubernetes_version) == []


@SETTINGS
@given(mutated_plans())
def test_hostile_values_in_a_plan_never_traceback_or_render_invalid_files(data: dict[str, Any]) -> None:
    _check_plan_data(data)


@SETTINGS
@given(plausible_plans())
def test_plans_in_range_render_valid_files_or_are_rejected_clearly(data: dict[str, Any]) -> None:
    _check_plan_data(data)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(NASTY_STRINGS), max_size=8).map("\n".join),
                 mutated_plans().map(lambda d: yaml.safe_dump(d, allow_unicode=True))))
def test_any_text_parses_to_a_plan_or_a_plan_error(text: str) -> None:
    try:
        parse_plan(text)
    except PlanError as err:
        assert err.lines() and all(line for line in err.lines())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mutated_plans(), plausible_plans()))
def test_render_command_writes_all_valid_files_or_nothing(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "plan.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        import argparse

        out = root / "out"
        code = run_render(argparse.Namespace(plan=str(root / "plan.yaml"), output=str(out), schemas=str(SHARED)))
        assert code in (0, 2)  # 1 would be an internal error
        if code == 2:
            assert not out.exists()
            return
        docs = []
        for path in out.rglob("*"):
            if path.is_file() and path.suffix in (".yaml", ".json") and path.name != "plan.yaml":
                text = path.read_text(encoding="utf-8")
                loaded = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
                docs += [(path.name, d) for d in loaded if d is not None]
        version = plan_from_dict(yaml.safe_load((out / "plan.yaml").read_text())).cluster.kubernetes_version
        assert docs and validate_documents(docs, SHARED, version) == []
