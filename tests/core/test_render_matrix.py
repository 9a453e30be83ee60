"""Every mode x instance family x reservation on/off x catalog model: what `validate` accepts renders files
that pass every validator; what it rejects gets a clear message naming the field and the fix.

Whether a combination should be accepted is computed here from the catalog's numbers (EFA support, GPU
memory), independently of the rules module, so a rule that wrongly accepts or rejects fails the test.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynamo_wizard.core.catalog import InstanceType, Model, load_catalog
from dynamo_wizard.core.errors import PlanError
from dynamo_wizard.core.plan import plan_from_dict
from dynamo_wizard.core.validate import render_and_check

CATALOG = load_catalog()
MODES = ["agg", "disagg-efa", "disagg-tcp"]
FAMILIES = sorted(CATALOG.families)
MODELS = sorted(CATALOG.models.values(), key=lambda mdl: mdl.id)


def largest_type(family: str) -> InstanceType:
    return max(CATALOG.family_types(family), key=lambda t: (t.gpus, -(t.on_demand_price or 0)))


def tensor_parallel_for(model: Model, itype: InstanceType) -> int:
    tp = 1
    while tp * itype.gpu_memory_gb < model.min_gpu_memory_gb and tp < itype.gpus:
        tp *= 2
    return min(tp, itype.gpus)


def plan_data(mode: str, family: str, reserved: bool, model: Model) -> dict[str, Any]:
    itype = largest_type(family)
    tp = tensor_parallel_for(model, itype)
    worker = {"replicas": 1, "gpus": tp, "tensorParallel": tp}
    serving: dict[str, Any] = {"mode": mode, "instanceType": itype.name, "model": model.id}
    if mode == "agg":
        serving["worker"] = worker
    else:
        serving["prefill"] = dict(worker, replicas=2)
        serving["decode"] = worker
    data: dict[str, Any] = {
        "apiVersion": "dynamo-wizard/v1", "kind": "Plan", "deployment": f"m-{family}", "region": "us-west-2",
        "gpu": {"families": [family], "capacityTypes": ["on-demand"]}, "serving": serving,
    }
    if reserved:
        data["zones"] = ["us-west-2a", "us-west-2b"]
        data["reservation"] = {"ids": ["cr-0123456789abcdef0"], "tags": {"team": "dynamo"}, "fallback": "none"}
    return data


def expected_accepted(mode: str, family: str, model: Model) -> bool:
    itype = largest_type(family)
    tp = tensor_parallel_for(model, itype)
    fits = tp * itype.gpu_memory_gb >= model.min_gpu_memory_gb
    return fits and (mode != "disagg-efa" or itype.efa_supported)


def reparsed(name: str, text: str) -> list[Any]:
    if name.endswith(".json"):
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d is not None]


@pytest.mark.parametrize("reserved", [False, True], ids=["no-reservation", "reservation"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", MODES)
def test_every_combination_renders_valid_files_or_is_rejected_clearly(
        mode: str, family: str, reserved: bool, shared_reference: Path, tmp_path: Path) -> None:
    accepted = 0
    for model in MODELS:
        label = f"{mode}/{family}/{'reserved' if reserved else 'none'}/{model.id}"
        try:
            plan = plan_from_dict(plan_data(mode, family, reserved, model))
        except PlanError as err:  # the plan's own shape: never expected for these combinations
            pytest.fail(f"{label}: plan rejected: {err}")
        checked = render_and_check(plan, CATALOG, shared_reference)
        if expected_accepted(mode, family, model):
            assert checked.errors == [], f"{label}: {[str(e) for e in checked.errors]}"
            accepted += 1
            outputs = checked.outputs()
            assert {name for name, _, _ in outputs} >= {"plan.yaml", "runbook.sh", "00-eksctl-cluster.yaml"}
            # What would be written reads back as exactly the objects that passed every validator.
            texts = {name: text for name, text, _ in outputs}
            for f in checked.files:
                assert reparsed(f.name, texts[f.name]) == list(f.documents), f"{label}: {f.name}"
            assert reserved == any(name.endswith("gpu-reserved.json") for name in texts)
            assert plan_from_dict(yaml.safe_load(texts["plan.yaml"])) == plan, label
            runbook = tmp_path / f"{model.id.replace('/', '_')}.sh"
            runbook.write_text(checked.runbook)
        else:
            assert checked.files == () and checked.errors, f"{label}: accepted, but it cannot work"
            for err in checked.errors:
                assert err.field.startswith(("serving.mode", "serving.worker.tensorParallel",
                                             "serving.prefill.tensorParallel", "serving.decode.tensorParallel")), \
                    f"{label}: unexpected rejection {err}"
                assert err.message and err.fix, f"{label}: {err} has no fix"
    scripts = sorted(str(p) for p in tmp_path.glob("*.sh"))
    assert len(scripts) == accepted
    if scripts:  # every accepted combination's runbook is valid bash
        proc = subprocess.run(["bash", "-c", 'for f in "$@"; do bash -n "$f" || exit 1; done', "check", *scripts],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_the_matrix_accepts_and_rejects_something() -> None:
    """Guard: the matrix above really exercises both paths."""
    outcomes = {expected_accepted(mode, f, mdl) for mode in MODES for f in FAMILIES for mdl in MODELS}
    assert outcomes == {True, False}
    assert math.isclose(largest_type("p5").gpu_memory_gb, 80.0)
