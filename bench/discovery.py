"""Discovery of all regions × the guide's GPU families × zones, plus reservations and quotas, against
local moto with 50 ms injected latency per call — vs the sequential `aws ec2 …` loop a user of the
guide would type (awscli from PyPI against the same server). Target: at least 30× faster.

The CLI loop is measured, not assumed: a sample of its real calls is timed in this run, and the loop's
time is that median per-call time × the number of calls the loop needs (it is too slow to run whole:
minutes). Our figure is a full, uncached run of `AwsDiscovery`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .result import Result, median

LATENCY_S = 0.05


class _Server:
    """moto's WSGI app behind our gap fills, with a fixed latency per request, on 127.0.0.1."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        from dynamo_wizard.sandbox import awsgaps

        self.state = awsgaps.default_sandbox_state()
        self.requests = 0
        self._lock = threading.Lock()
        moto_app = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self._lock:
                self.requests += 1
            time.sleep(LATENCY_S)  # simulated network round trip
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            from io import BytesIO

            environ["wsgi.input"] = BytesIO(body)
            url = f"http://{environ.get('HTTP_HOST', '127.0.0.1')}{environ.get('PATH_INFO', '')}"
            if environ.get("QUERY_STRING"):
                url += "?" + environ["QUERY_STRING"]
            headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["Content-Type"] = environ["CONTENT_TYPE"]
            resp = awsgaps.handle_http(self.state, environ["REQUEST_METHOD"], url, headers, body)
            if resp is None:
                return moto_app(environ, start_response)
            status, resp_headers, resp_body = resp
            start_response(f"{status} X", list(dict(resp_headers).items()))
            return [resp_body]

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _env(url: str, home: str) -> dict[str, str]:
    return dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", DYNAMO_WIZARD_HOME=home)


def _cli_loop(regions: list[str], families: dict[str, list[str]]) -> list[list[str]]:
    """The loop a user of the guide types, one call at a time."""
    calls: list[list[str]] = []
    for r in regions:
        calls.append(["ec2", "describe-availability-zones", "--region", r])
        for types in families.values():
            calls.append(["ec2", "describe-instance-type-offerings", "--region", r, "--location-type",
                          "availability-zone", "--filters", f"Name=instance-type,Values={','.join(types)}"])
        calls.append(["ec2", "describe-capacity-reservations", "--region", r])
        for code in ("L-DB2E81BA", "L-417A185B"):
            calls.append(["service-quotas", "get-service-quota", "--service-code", "ec2", "--quota-code", code,
                          "--region", r])
    return calls


def run(runs: int = 5) -> list[Result]:
    from dynamo_wizard.core.catalog import load_catalog

    catalog = load_catalog()
    families = list(catalog.guide_families)
    server = _Server()
    aws = str(Path(sys.executable).with_name("aws"))
    try:
        with tempfile.TemporaryDirectory() as home:
            env = _env(server.url, home)
            old = dict(os.environ)
            os.environ.update(env)
            try:
                from dynamo_wizard.cloud.aws import AwsDiscovery

                ours: list[float] = []
                calls_ours = 0
                regions: list[str] = []
                for _ in range(max(3, runs)):
                    before = server.requests
                    t0 = time.perf_counter()
                    d = AwsDiscovery(refresh=True)
                    regions = d.regions()
                    d.region_summaries(regions, families)
                    d.reservations_by_region(regions)
                    ours.append(time.perf_counter() - t0)
                    calls_ours = server.requests - before
            finally:
                os.environ.clear()
                os.environ.update(old)
            type_names = {f: [t.name for t in catalog.family_types(f)] for f in families}
            loop = _cli_loop(regions, type_names)
            sample = loop[:: max(1, len(loop) // 8)][:8]
            per_call: list[float] = []
            for argv in sample:
                t0 = time.perf_counter()
                proc = subprocess.run([aws, *argv, "--output", "json"], env=env, capture_output=True, text=True,
                                      timeout=120)
                per_call.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise RuntimeError(f"aws {' '.join(argv)} failed: {proc.stderr[-300:]}")
    finally:
        server.stop()
    o = median(ours)
    cli = median(per_call) * len(loop)
    return [Result("discovery (all regions × guide families)", o, cli, "s", "≥ 30× faster (ratio ≤ 0.033)",
                   cli / o >= 30, anchor_name="sequential aws CLI loop",
                   note=f"{len(regions)} regions, {calls_ours} API calls ours, {len(loop)} CLI calls at "
                        f"{median(per_call):.2f} s each (sampled {len(per_call)}); {cli / o:.0f}× faster")]
