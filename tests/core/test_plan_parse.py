"""The plan file's own checks: every message names the field, the value and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.plan import Plan, load_plan, parse_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = (EXAMPLES / "disagg-efa.yaml").read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    return caught.value.lines()


@pytest.mark.parametrize("name", ["agg.yaml", "disagg-efa.yaml", "disagg-tcp.yaml", "disagg-p5-reserved.yaml"])
def test_examples_parse_and_round_trip(name: str) -> None:
    plan = load_plan(EXAMPLES / name)
    assert isinstance(plan, Plan)
    assert parse_plan(plan.to_yaml()) == plan


def test_unknown_key_is_named_with_its_path_and_fix() -> None:
    assert problems(BASE.replace("  model: Qwen/Qwen3-32B", "  model: Qwen/Qwen3-32B\n  modle: x")) == [
        "serving.modle: unknown key — remove it or check its spelling against docs/plan-format.md"]


def test_wrong_types_name_the_value() -> None:
    lines = problems(BASE.replace("prefill: {replicas: 1,", "prefill: {replicas: many,"))
    assert lines == ["serving.prefill.replicas: 'many': Input should be a valid integer, unable to parse string "
                     "as an integer — use a whole number"]


def test_impossible_combinations_are_explained() -> None:
    text = BASE.replace("families: [g6e, g7e]", "families: [g6e]").replace("region: us-east-1",
                                                                             "region: us-east-1\nzones: [us-west-2a]")
    lines = problems(text)
    assert "zones: 'us-west-2a' is not a zone of us-east-1; use names like us-east-1a" in lines
    assert any(line.startswith("serving.instanceType: 'g7e.12xlarge' is of family 'g7e', which is not in "
                               "gpu.families") for line in lines)


def test_a_prefix_is_not_a_family_and_a_type_is_not_a_family() -> None:
    lines = problems(BASE.replace("families: [g6e, g7e]", "families: [g7e, p5.48xlarge]"))
    assert any("'p5.48xlarge' is not an instance family" in line for line in lines)


def test_names_must_be_kubernetes_friendly() -> None:
    for bad in ("Demo", "demo-", "1demo", "a" * 32, "dé"):
        lines = problems(BASE.replace("deployment: demo-efa", f"deployment: {json.dumps(bad)}"))
        assert lines and lines[0].startswith("deployment:"), (bad, lines)


def test_unquoted_kubernetes_version_is_read_as_meant() -> None:
    plan = parse_plan(BASE + "cluster: {kubernetesVersion: 1.30}\n")
    assert plan.cluster.kubernetes_version == "1.30"


def test_not_yaml_or_not_a_mapping() -> None:
    assert problems("a: [b\n")[0].startswith("plan: is not valid YAML at line")
    assert problems("- 1\n- 2\n")[0].startswith("plan: expected a YAML mapping, got list")


def test_the_welcome_screen_checks_deployment_names_by_the_plans_own_rule() -> None:
    from dynamo_wizard.core.plan import NAME_RE
    from dynamo_wizard.screens.welcome import NAME_RE as WELCOME_NAME_RE

    assert WELCOME_NAME_RE.pattern == NAME_RE.pattern
    for bad in ("ai-dynamo-", "ai-dynamo\n", "1abc", "a" * 32, "Ai"):
        assert not WELCOME_NAME_RE.fullmatch(bad), bad
    assert WELCOME_NAME_RE.fullmatch("ai-dynamo") and WELCOME_NAME_RE.fullmatch("a" * 31)


def test_kubernetes_names_with_a_trailing_newline_are_not_valid() -> None:
    from dynamo_wizard.core import validate

    def problems(name: str, label: str) -> list[str]:
        doc = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": {"app.kubernetes.io/name": label}}}
        return [str(p) for p in validate._check_metadata(doc, "ns.yaml")]

    assert problems("dynamo-system", "dynamo") == []
    assert any("not a valid Kubernetes name" in p for p in problems("dynamo-system\n", "dynamo"))
    assert problems("dynamo-system", "dynamo\n") != []
