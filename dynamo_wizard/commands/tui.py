"""`dynamo-wizard` / `dynamo-wizard tui [--plan FILE]`: the full-screen wizard.

With `--sandbox`, cli.py has already activated the sandbox (DYNAMO_WIZARD_SANDBOX=1 and AWS_ENDPOINT_URL in
the environment) before this runs, and the wizard shows the SANDBOX banner.
"""

from __future__ import annotations

import argparse
import os


def run(args: argparse.Namespace) -> int:
    plan = None
    if getattr(args, "plan", None):
        from ..core.plan import load_plan

        plan = load_plan(args.plan)  # PlanError -> exit 2 in cli.py
    from ..tui.app import WizardApp

    mode = "sandbox" if os.environ.get("DYNAMO_WIZARD_SANDBOX") == "1" else "aws"
    app = WizardApp(mode=mode, plan=plan)
    result = app.run()
    return int(result or 0)
