"""Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and an approximation of strategic
merge patch (lists of named items merge by name; `$patch: delete` honoured) that server-side apply reuses."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError

# List fields whose items merge by a key under strategic merge (the subset Kubernetes declares that matters
# for the objects the wizard applies).
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name", "volumeMounts": "mountPath",
    "ports": "containerPort", "imagePullSecrets": "name", "tolerations": "key", "conditions": "type",
    "envFrom": None, "finalizers": None,
}


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, v in patch.items():
            if k.startswith("$"):
                continue
            if v is None:
                result.pop(k, None)
            else:
                result[k] = strategic_merge(result.get(k), v, k)
        return result
    if isinstance(patch, list):
        key = _MERGE_KEYS.get(field)
        if key and isinstance(target, list) and all(isinstance(i, dict) for i in patch):
            result_list = [copy.deepcopy(i) for i in target]
            for item in patch:
                idx = next((n for n, cur in enumerate(result_list)
                            if isinstance(cur, dict) and cur.get(key) == item.get(key)), None)
                if item.get("$patch") == "delete":
                    if idx is not None:
                        result_list.pop(idx)
                elif idx is None:
                    result_list.append({k: v for k, v in item.items() if not k.startswith("$")})
                else:
                    result_list[idx] = strategic_merge(result_list[idx], item, field)
            return result_list
        if field == "finalizers" and isinstance(target, list):
            return list(dict.fromkeys([*target, *patch]))
        return copy.deepcopy(patch)
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, "Invalid", f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, list):
            cur = cur[int(p)]
        else:
            cur = cur[p]
    return cur


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise ApiError(422, "Invalid", f"test operation failed at {op.get('path')}")
                continue
            if kind in ("move", "copy"):
                src = _pointer(op.get("from", ""))
                value = copy.deepcopy(_walk(doc, src))
                if kind == "move":
                    doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
                doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
                continue
            if not parts:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(op.get("value"))
                continue
            parent = _walk(doc, parts[:-1])
            last = parts[-1]
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op.get("value")))
                else:
                    parent[last] = copy.deepcopy(op.get("value"))
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op.get("value"))
                else:
                    if last not in parent:
                        raise KeyError(last)
                    parent[last] = copy.deepcopy(op.get("value"))
            elif kind == "remove":
                if isinstance(parent, list):
                    parent.pop(int(last))
                else:
                    del parent[last]
            else:
                raise ApiError(422, "Invalid", f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                           f"{kind} {op.get('path')}: {err}") from None
    return doc
