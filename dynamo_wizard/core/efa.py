"""Which KV-transfer backend NIXL chose, read from a worker's log: EFA (LIBFABRIC over the efa provider),
a fall back to TCP, or UCX (the NixlConnector default, which silently goes slow on EFA — pitfall 3).

Pure: the EFA check step reads the logs (through core.protocols.Kube) and asks this module.

What the logs say (NIXL and libfabric, at their default levels and with NIXL_LOG_LEVEL=debug):
- `NIXL INFO _api.py:NNN Backend LIBFABRIC was instantiated` / `Backend UCX was instantiated`
- libfabric provider selection: lines naming the `efa` provider, or `tcp` / `sockets` (the fall back
  when no EFA device is visible in the pod), e.g. `Selected provider: efa`, `provider tcp`,
  `falling back to TCP`, `No EFA devices found`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["efa", "tcp", "ucx", "libfabric-unknown-provider", "unknown"]

_BACKEND_RE = re.compile(r"\bBackend\s+(LIBFABRIC|UCX|GDS|GDS_MT|POSIX|MOONCAKE)\b.*\binstantiated\b", re.I)
_BACKENDS_LIST_RE = re.compile(r"backends?\W{1,4}\[?\W*(LIBFABRIC|UCX)\b", re.I)
_EFA_RE = re.compile(
    r"(provider\W{0,3}(?:is\W{0,3})?efa\b|\befa\s+provider\b|using\s+(?:the\s+)?efa\b|fabric\W{0,3}efa\b"
    r"|\bfi_info.*\befa\b|selected\s+provider\W{0,3}efa\b|\bEFA devices? (?:found|detected|available)\b"
    r"|\brail.*\bprovider\W{0,3}efa\b)", re.I)
_TCP_RE = re.compile(
    r"(provider\W{0,3}(?:is\W{0,3})?(?:tcp|sockets)\b|\b(?:tcp|sockets)\s+provider\b|fall(?:ing|s)?\s*back\s+to\s+"
    r"(?:the\s+)?(?:tcp|sockets)\b|fallback\W{0,3}(?:to\W{0,3})?(?:tcp|sockets)\b|no\s+efa\s+devices?"
    r"|efa\s+(?:devices?\s+)?(?:not\s+(?:found|available|detected)|unavailable)"
    r"|selected\s+provider\W{0,3}(?:tcp|sockets)\b|using\s+(?:the\s+)?(?:tcp|sockets)\b)", re.I)
_NOT_EFA_NOISE = re.compile(r"filtered by provider include/exclude list|registering provider", re.I)


@dataclass(frozen=True)
class BackendReport:
    verdict: Verdict
    evidence: str = ""  # the log line that decided it

    @property
    def efa(self) -> bool:
        return self.verdict == "efa"

    def sentence(self, pod: str = "") -> str:
        who = f"{pod}: " if pod else ""
        return {
            "efa": f"{who}EFA is in use (NIXL chose LIBFABRIC over the efa provider)",
            "tcp": f"{who}NIXL fell back to TCP: LIBFABRIC found no EFA device, so KV transfers go over TCP",
            "ucx": f"{who}NIXL chose UCX, not LIBFABRIC: EFA is not used (kv_connector_extra_config.backends "
                   "should be [LIBFABRIC])",
            "libfabric-unknown-provider": f"{who}NIXL chose LIBFABRIC, but the log does not say which provider "
                                          "(efa or tcp); set NIXL_LOG_LEVEL=debug on the workers to see it",
            "unknown": f"{who}the log does not say which NIXL backend was chosen (yet)",
        }[self.verdict]


def detect_backend(lines: Iterable[str]) -> BackendReport:
    """The KV-transfer backend a worker's log shows. The latest decisive line wins (a restart re-logs)."""
    backend: str | None = None
    backend_line = ""
    provider: str | None = None
    provider_line = ""
    for line in lines:
        if _NOT_EFA_NOISE.search(line):
            continue
        m = _BACKEND_RE.search(line)
        if m:
            backend, backend_line = m.group(1).upper(), line.strip()
        elif backend is None:
            listed = _BACKENDS_LIST_RE.search(line)
            if listed and "instantiat" in line.lower():
                backend, backend_line = listed.group(1).upper(), line.strip()
        if _TCP_RE.search(line):
            provider, provider_line = "tcp", line.strip()
        elif _EFA_RE.search(line):
            provider, provider_line = "efa", line.strip()
    if backend == "UCX":
        return BackendReport("ucx", backend_line)
    if provider == "tcp":
        return BackendReport("tcp", provider_line)
    if backend == "LIBFABRIC":
        if provider == "efa":
            return BackendReport("efa", provider_line)
        return BackendReport("libfabric-unknown-provider", backend_line)
    if provider == "efa":
        return BackendReport("efa", provider_line)
    return BackendReport("unknown")
