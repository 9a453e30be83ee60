"""Naming an AWS request: service, operation, parameters, region.

Query and JSON protocols name their operation in the request; REST protocols (EKS, EFS) are matched against
botocore's own service models, loaded on first use.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .. import awsgaps

# SigV4 signing name -> boto3 service name, where they differ
SIGNING_TO_SERVICE = {"elasticfilesystem": "efs", "servicequotas": "service-quotas", "tagging":
                      "resourcegroupstaggingapi", "elasticloadbalancing": "elbv2"}
READ_PREFIXES = ("Describe", "List", "Get", "Search", "Lookup", "Head", "Query", "Scan", "BatchGet", "Simulate",
                 "Estimate", "Preview", "Validate", "Check")


@dataclass(frozen=True)
class Call:
    service: str
    operation: str | None
    params: dict[str, Any]
    region: str

    @property
    def mutating(self) -> bool:
        return self.operation is None or not self.operation.startswith(READ_PREFIXES)


@functools.lru_cache(maxsize=16)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], str]]:
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:
        return []
    routes = []
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http.get("requestUri", "/").split("?", 1)[0]
        names = tuple(n.rstrip("+") for n in re.findall(r"\{([^}]+)\}", uri))
        escaped = re.escape(uri).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.compile("^" + re.sub(r"\{([^}]+)\}", lambda m: "(.+)" if m.group(1).endswith("+") else "([^/]+)",
                                          escaped) + "/?$")
        routes.append((http.get("method", "GET"), pattern, names, op_name))
    # literal routes before templated ones, longer first
    routes.sort(key=lambda r: (-len(r[1].pattern), r[1].pattern.count("(")))
    return routes


def identify(method: str, url: str, headers: Any, body: bytes) -> Call | None:
    call = awsgaps.parse_http_request(method, url, headers, body)
    if call is None:
        return None
    service = SIGNING_TO_SERVICE.get(call.service, call.service)
    if call.operation is not None:
        return Call(service, call.operation, dict(call.params), call.region)
    split = urlsplit(url)
    path = unquote(split.path)
    for route_method, pattern, names, op in _rest_routes(service):
        if route_method != method.upper():
            continue
        m = pattern.match(path)
        if not m:
            continue
        params: dict[str, Any] = dict(zip(names, m.groups(), strict=True))
        params.update(dict(parse_qsl(split.query)))
        if body:
            try:
                data = json.loads(body)
                if isinstance(data, dict):
                    params.update(data)
            except ValueError:
                pass
        return Call(service, op, params, call.region)
    return Call(service, None, {}, call.region)
