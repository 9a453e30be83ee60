"""Time from confirm to serving under the step-duration model of the real steps (cluster 15 min, EFS 3,
platform 3, download 6, GPU node 4, image pull 8, model load 2), vs the guide's sequential order.
Targets: ≤ 0.75× the guide's order, and within 10% of the graph's critical path.

Not a formula: the product's real graph (core.steps, for each of the guide's three examples) is run by the
product's real Runner, each step taking its modelled time on a scaled clock (1 model minute = SCALE s), so
what is measured is what the runner's concurrency really achieves.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .result import Result, median

SCALE = 0.05  # seconds of wall time per modelled minute
EXAMPLES = ("agg", "disagg-efa", "disagg-tcp")


def _measure(plan_path: Path, home: Path) -> tuple[float, float, float]:
    from dynamo_wizard.core.plan import load_plan
    from dynamo_wizard.core.runner import Runner, Step, StepContext, critical_path, done
    from dynamo_wizard.core.steps import guide_sequential_minutes, provision_step_infos, step_durations

    plan = load_plan(plan_path)
    infos = provision_step_infos(plan)
    minutes = step_durations(plan)

    def action_for(step_id: str):  # noqa: ANN202 - a closure per step
        def act(ctx: StepContext):  # noqa: ANN202
            ctx.sleep(minutes.get(step_id, 0.0) * SCALE)  # the step's modelled duration
            return done()
        return act

    steps = [Step(i.id, i.title, action_for(i.id), i.deps, timeout=3600, optional=i.optional) for i in infos]
    runner = Runner(steps, deployment=plan.deployment, max_workers=8, log_dir=home / plan.deployment)
    t0 = time.perf_counter()
    report = runner.run()
    elapsed = (time.perf_counter() - t0) / SCALE
    if report.failed():
        raise RuntimeError(f"modelled run failed: {[f.step_id for f in report.failed()]}")
    return elapsed, guide_sequential_minutes(), critical_path(infos, minutes)


def run(runs: int = 5) -> list[Result]:
    import os

    root = Path(__file__).resolve().parents[1]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("DYNAMO_WIZARD_HOME", home)
        for name in EXAMPLES:
            samples = [_measure(root / "examples" / f"{name}.yaml", Path(home)) for _ in range(max(3, runs))]
            ours = median([s[0] for s in samples])
            guide, cp = samples[0][1], samples[0][2]
            within = abs(ours - cp) / cp <= 0.10
            results.append(Result(f"confirm to serving, {name}", ours, guide, "model min",
                                  "≤ 0.75× the guide, ≤ 10% over the critical path",
                                  ours / guide <= 0.75 and within, "guide's sequential order",
                                  note=f"critical path {cp:.1f} min; measured {100 * (ours - cp) / cp:+.1f}% vs it"))
    return results
