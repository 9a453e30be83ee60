"""The provisioning graph's shape and the pure decisions of its steps (no cloud)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamo_wizard.core.plan import Plan, load_plan, plan_from_dict
from dynamo_wizard.core.protocols import SubnetInfo
from dynamo_wizard.core.runner import critical_path
from dynamo_wizard.core.steps import (
    PHASE_MINUTES,
    ProvisionOptions,
    _job_matches,
    _without_wait,
    guide_sequential_minutes,
    oom_killed,
    pick_mount_subnets,
    provision_step_infos,
    step_durations,
    suggest_memory,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, **changes: object) -> Plan:
    data = load_plan(EXAMPLES / f"{name}.yaml").to_dict()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data[section], field: value}
        else:
            data[key] = value
    return plan_from_dict(data)


def deps(plan: Plan, **kw: object) -> dict[str, tuple[str, ...]]:
    return {i.id: i.deps for i in provision_step_infos(plan, ProvisionOptions(**kw))}  # type: ignore[arg-type]


def test_the_graph_runs_independent_work_in_parallel() -> None:
    d = deps(example("agg"))
    assert d["efs"] == ("cluster",)  # EFS does not wait for helm, nor for Kubernetes access
    assert set(d["model-download"]) == {"efs-volumes", "hf-secret", "platform"}
    assert "model-download" not in d["gpu-warmup"] and "platform" not in d["gpu-warmup"]
    assert {"model-download", "gpu-warmup", "platform", "hf-secret", "gpu-nodepool"} <= set(d["graph"])
    assert "default-storageclass" in d["platform"]  # the NATS volume needs the default StorageClass first
    assert d["smoke-test"] == ("graph",)
    assert "efa-check" not in d and "reserved-capacity" not in d


def test_plan_options_change_the_graph() -> None:
    efa = deps(example("disagg-efa"))
    assert efa["efa-check"] == ("graph",)
    reserved = deps(example("disagg-p5-reserved"))
    assert reserved["reserved-capacity"] == ("kube-access",)
    assert "reserved-capacity" in reserved["graph"] and "reserved-capacity" in reserved["gpu-warmup"]
    no_efs = deps(example("agg", storage__efs=False))
    assert not {"efs", "efs-volumes", "model-download"} & set(no_efs)
    no_warm = deps(example("agg"), warm_gpu_nodes=False)
    assert "gpu-warmup" not in no_warm and "gpu-warmup" not in no_warm["graph"]


def test_optional_steps_are_the_warmup_and_the_efa_check() -> None:
    infos = provision_step_infos(example("disagg-efa"))
    assert {i.id for i in infos if i.optional} == {"gpu-warmup", "efa-check"}


def test_duration_model_critical_path_beats_the_guide() -> None:
    plan = example("disagg-efa")
    infos = provision_step_infos(plan)
    guide = guide_sequential_minutes()
    assert guide == sum(PHASE_MINUTES.values()) == 41
    warm = critical_path(infos, step_durations(plan)) / guide
    cold = critical_path(provision_step_infos(plan, ProvisionOptions(warm_gpu_nodes=False)),
                         step_durations(plan, warm=False)) / guide
    assert warm <= 0.75 < cold  # warming GPU nodes during the download is what gets under 0.75
    assert critical_path(infos, step_durations(plan)) == 15 + max(3 + 6, 3, 4 + 8) + 2


def test_mount_targets_one_per_zone_private_first() -> None:
    subnets = [SubnetInfo("subnet-pub-a", "us-east-1a", "vpc", "192.168.0.0/20", True),
               SubnetInfo("subnet-priv-a", "us-east-1a", "vpc", "192.168.80.0/20", False),
               SubnetInfo("subnet-pub-b", "us-east-1b", "vpc", "192.168.16.0/20", True)]
    chosen = pick_mount_subnets(subnets)
    assert {z: s.id for z, s in chosen.items()} == {"us-east-1a": "subnet-priv-a", "us-east-1b": "subnet-pub-b"}


@pytest.mark.parametrize(("current", "suggested"), [("4Gi", "16Gi"), ("16Gi", "32Gi"), ("512Mi", "16Gi"),
                                                    ("24Gi", "48Gi")])
def test_oom_memory_suggestion(current: str, suggested: str) -> None:
    assert suggest_memory(current) == suggested


def test_oom_is_seen_in_the_current_or_last_state() -> None:
    last = {"status": {"containerStatuses": [{"lastState": {"terminated": {"reason": "OOMKilled"}},
                                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert oom_killed(last)
    assert not oom_killed({"status": {"containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]}})


def test_a_download_job_is_reused_only_for_the_same_model_and_memory() -> None:
    def job(model: str, memory: str) -> dict[str, object]:
        return {"spec": {"template": {"spec": {"containers": [{
            "env": [{"name": "MODEL_NAME", "value": model}], "resources": {"requests": {"memory": memory}}}]}}}}

    assert _job_matches(job("a/b", "4Gi"), job("a/b", "4Gi"))
    assert not _job_matches(job("a/b", "4Gi"), job("a/b", "16Gi"))
    assert not _job_matches(job("a/b", "4Gi"), job("a/c", "4Gi"))


def test_helm_runs_without_its_own_wait() -> None:
    assert _without_wait(["upgrade", "--install", "r", "c", "--wait", "--timeout", "15m", "-f", "v.yaml"]) == \
        ["upgrade", "--install", "r", "c", "-f", "v.yaml"]


def test_a_tools_failure_is_named_by_its_cause_line_not_its_closing_summary() -> None:
    from dynamo_wizard.core.steps import _first_error_line

    eksctl = ["2026-11-28 22:52:23 [ℹ]  using region us-east-1",
              "2026-11-28 22:52:23 [✖]  creating CloudFormation stack \"eksctl-demo-cluster\": AlreadyExistsException",
              "Error: failed to create cluster \"demo\""]
    assert _first_error_line(eksctl) == '[✖]  creating CloudFormation stack "eksctl-demo-cluster": AlreadyExistsException'
    helm = ["Release \"dynamo-platform\" does not exist. Installing it now.",
            "Error: INSTALLATION FAILED: chart not found"]
    assert _first_error_line(helm) == "Error: INSTALLATION FAILED: chart not found"
    assert _first_error_line([]) == "no output"
