"""Label and field selectors, parsed the way the API server parses them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has  # "!"


_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        m = _EQ_RE.match(part)
        if m:
            reqs.append(Requirement(m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)))
            continue
        m = _SET_RE.match(part)
        if m:
            neg, key, op, vals = m.groups()
            if op:
                reqs.append(Requirement(key, op, tuple(v.strip() for v in vals.split(",") if v.strip())))
            else:
                reqs.append(Requirement(key, "!" if neg else "exists"))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: invalid label selector {text!r}")
    return reqs


def labels_match(reqs: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


def selector_from_label_selector(sel: dict[str, Any] | None) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels/matchExpressions) as requirements."""
    if not sel:
        return []
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.get("matchExpressions") or []:
        reqs.append(Requirement(e["key"], ops.get(e.get("operator", "In"), "in"), tuple(e.get("values") or ())))
    return reqs


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    equal: bool
    value: str


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    if not text:
        return []
    out: list[FieldRequirement] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {part!r}")
        out.append(FieldRequirement(tuple(m.group(1).split(".")), m.group(2) != "!=", m.group(3)))
    return out


def _field_value(obj: dict[str, Any], path: tuple[str, ...]) -> str:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all((_field_value(obj, r.path) == r.value) == r.equal for r in reqs)
