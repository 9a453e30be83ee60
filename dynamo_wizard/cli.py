"""Command line: the TUI by default, and headless subcommands on the same core.

Each subcommand's body lives in `dynamo_wizard/commands/<module>.py` and is imported only when used, so
`dynamo-wizard --help` and the TUI start fast (boto3 and kubernetes load only when needed).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from .core.errors import PlanError, WizardError
from .core.redact import redact

# subcommand -> (module under dynamo_wizard.commands, function name)
COMMANDS: dict[str, tuple[str, str]] = {
    "tui": ("tui", "run"),
    "plan": ("plan_prompts", "run"),
    "render": ("render", "run_render"),
    "validate": ("render", "run_validate"),
    "gpus": ("discovery", "run_gpus"),
    "reservations": ("discovery", "run_reservations"),
    "preflight": ("discovery", "run_preflight"),
    "apply": ("apply", "run"),
    "cleanup": ("cleanup", "run_cleanup"),
    "status": ("cleanup", "run_status"),
    "sandbox": ("sandbox", "run"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dynamo-wizard",
        description="Deploy NVIDIA Dynamo on Amazon EKS Auto Mode, and tear it down again. "
        "Without a command, starts the TUI.",
    )
    p.add_argument("--sandbox", action="store_true",
                   help="run against the local sandbox (simulated AWS and cluster on 127.0.0.1)")
    p.add_argument("--sandbox-speed", type=float, default=None, metavar="X",
                   help="sandbox time scale: 1 = the default (a deployment in under a minute), 2 = twice as fast")
    p.add_argument("--profile", default=None, help="AWS profile (default: AWS_PROFILE or the standard chain)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("tui", help="the full-screen wizard (the default)")
    s.add_argument("--plan", default=None, help="start from this plan file")

    s = sub.add_parser("plan", help="answer the wizard's questions as line prompts; writes a plan file")
    s.add_argument("-o", "--output", default="plan.yaml", help="where to write the plan (default plan.yaml)")
    s.add_argument("--answers", default=None, help="a YAML file of answers (for scripts)")

    s = sub.add_parser("render", help="write every manifest, config and a runbook for a plan")
    s.add_argument("plan")
    s.add_argument("-o", "--output", required=True, help="directory to write into")
    s.add_argument("--schemas", default=None, help="a directory of CRDs/JSON schemas to validate against")

    s = sub.add_parser("validate", help="check a plan and its rendered files; exit 2 on problems")
    s.add_argument("plan")
    s.add_argument("--schemas", default=None, help="a directory of CRDs/JSON schemas to validate against")

    s = sub.add_parser("gpus", help="GPU instance types per region: GPUs, memory, EFA, zones, $/h, quota")
    s.add_argument("--region", default=None)
    s.add_argument("--families", default=None, help="comma-separated families (default: the guide's)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("reservations", help="capacity reservations and Capacity Blocks in a region")
    s.add_argument("--region", default=None)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("preflight", help="check credentials, tools, offerings, quotas and reservations for a plan")
    s.add_argument("plan")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("apply", help="provision a plan, headless (logs to stdout)")
    s.add_argument("plan")
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    s = sub.add_parser("cleanup", help="delete everything a deployment created")
    s.add_argument("--deployment", default=None)
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    s = sub.add_parser("status", help="deployments known to the ledger or found by tag, with what exists")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("sandbox", help="manage the local sandbox service")
    s.add_argument("action", choices=["start", "env", "reset", "stop", "status", "serve"])
    s.add_argument("--faults", default=None, help="faults to inject, e.g. throttle=0.2,oom-download")
    return p


def _dispatch(name: str) -> Callable[[argparse.Namespace], int]:
    module, func = COMMANDS[name]
    mod = importlib.import_module(f"dynamo_wizard.commands.{module}")
    return getattr(mod, func)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "tui"
    if command == "tui" and not hasattr(args, "plan"):
        args.plan = None
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    try:
        if args.sandbox and command != "sandbox":
            from .sandbox.client import activate

            activate(speed=args.sandbox_speed)
        return int(_dispatch(command)(args) or 0)
    except PlanError as err:
        for line in err.lines():
            print(f"error: {redact(line)}", file=sys.stderr)
        return 2
    except WizardError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
