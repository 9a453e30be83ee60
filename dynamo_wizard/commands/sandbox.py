"""`dynamo-wizard sandbox start|env|reset|stop|status|serve`: manage the local sandbox service."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..sandbox import client


def _print_env(values: dict[str, str]) -> None:
    for key, value in values.items():
        print(f"export {key}={shlex.quote(value)}")


def run(args: argparse.Namespace) -> int:
    action = args.action
    speed = getattr(args, "sandbox_speed", None)
    faults = getattr(args, "faults", None)
    if action == "serve":
        from ..sandbox import service

        argv = ["--dir", str(client._layout().root)]
        if speed:
            argv += ["--speed", str(speed)]
        if faults:
            argv += ["--faults", faults]
        return service.main(argv)
    if action == "start":
        info = client.start(speed=speed)
        if faults:
            client.set_faults(faults)
        print(f"sandbox running at {info['url']} (pid {info['pid']}, speed {info.get('speed', 1)}), "
              f"in {client._layout().root}")
        print('point a shell at it with:  eval "$(dynamo-wizard sandbox env)"')
        if faults:
            print(f"faults armed: {faults}")
        return 0
    if action == "env":
        if client.running() is None:
            print("starting the sandbox service…", file=sys.stderr)
            client.start(speed=speed)
        if faults:
            client.set_faults(faults)
        _print_env(client.env())
        return 0
    if action == "reset":
        info = client.reset()
        if faults:
            client.set_faults(faults)
        print(f"sandbox reset: a fresh world at {info['url']} (pid {info['pid']})")
        return 0
    if action == "stop":
        if client.stop():
            print("sandbox stopped (its world is kept; `dynamo-wizard sandbox reset` starts a fresh one)")
        else:
            print("the sandbox is not running")
        return 0
    if action == "status":
        if faults:
            client.set_faults(faults)
        st = client.status()
        if st is None:
            print(f"the sandbox is not running (dir {client._layout().root})")
            return 1
        print(f"sandbox at {st['url']} (pid {st['pid']}), up {st['uptime']} s, speed {st['speed']}, "
              f"{st['aws_calls']} AWS calls served, dir {st['dir']}")
        active = {k: v for k, v in st["faults"].items() if k != "fired" and v not in (None, 0, 0.0, [], False)}
        print(f"faults: {', '.join(f'{k}={v}' for k, v in active.items()) if active else 'none'}")
        if not st["clusters"]:
            print("clusters: none")
        for c in st["clusters"]:
            extra = f", {c.get('nodes', 0)} nodes, {c.get('pods', 0)} pods" if c.get("endpoint") else ""
            print(f"cluster {c['name']} ({c['region']}): {c['status']}{extra}"
                  + (f", API server {c['endpoint']}" if c.get("endpoint") else ""))
        return 0
    print(f"unknown sandbox action {action!r}", file=sys.stderr)
    return 2
