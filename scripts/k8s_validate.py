#!/usr/bin/python3
"""Client-side validation of Kubernetes manifests, offline.

kubectl validates against the schema a cluster serves; with no cluster
(CI, this repository's tests) it cannot. The typed models of the official
Python client (Debian's python3-kubernetes) carry the same schema: each
object's fields, their types and which are required. This walks each
document of each file against them, strictly: an unknown or misspelt field,
a value of the wrong type, or a missing required field is an error.

usage: k8s_validate.py FILE.yaml...   exit 0 when all are valid, 1 otherwise
"""
import datetime
import re
import sys

import yaml
from kubernetes import client

KINDS = {  # (apiVersion, kind) -> model; what the examples use, and kin
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "Pod"): "V1Pod",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def check(value, typ, where, errors):
    if value is None:
        return
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{where}[{i}]", errors)
        return
    m = re.match(r"dict\(([^,]*), (.*)\)$", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a map, got {type(value).__name__}")
            return
        for k, v in value.items():
            check(v, m.group(2), f"{where}.{k}", errors)
        return
    if typ == "object":  # IntOrString, Quantity, free-form: the API takes any scalar or map
        return
    if typ in ("datetime", "date"):
        if not isinstance(value, (str, datetime.date)):
            errors.append(f"{where}: expected a date, got {value!r}")
        return
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ != "bool" and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: expected {typ}, got {value!r}")
        return
    model = getattr(client, typ, None)
    if model is None:
        errors.append(f"{where}: no model {typ}")
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a {typ} map, got {type(value).__name__}")
        return
    by_json = {j: py for py, j in model.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            known = ", ".join(sorted(by_json))
            errors.append(f"{where}.{key}: unknown field of {typ} (known: {known})")
            continue
        check(v, model.openapi_types[by_json[key]], f"{where}.{key}", errors)
    # Required fields: the model's own client-side validation says which.
    if not errors:
        try:
            client.ApiClient()._ApiClient__deserialize(value, typ)
        except (ValueError, TypeError) as e:
            errors.append(f"{where}: {e}")


def main(paths):
    bad = 0
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{path}: no document", file=sys.stderr)
            bad += 1
        for n, doc in enumerate(docs):
            errors = []
            key = (doc.get("apiVersion"), doc.get("kind")) if isinstance(doc, dict) else None
            name = f"{path}#{n + 1}"
            if key not in KINDS:
                errors.append(f"unsupported apiVersion/kind {key} (known: {sorted(KINDS)})")
            else:
                check(doc, KINDS[key], key[1], errors)
            for e in errors:
                print(f"{name}: {e}", file=sys.stderr)
            if errors:
                bad += 1
            else:
                print(f"{name}: {key[1]} {doc['metadata'].get('name', '')}: valid")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
