"""Check live responses of the service against its OpenAPI document.

Usage: check_openapi.py OPENAPI_JSON SAMPLES_JSON

SAMPLES_JSON is a list of {"method", "path" (the template, e.g. /v1/models/{version}/promote; "*" for a
request no route takes, whose answer must be an Error),
"status", "content_type", "body" (parsed JSON or text), "request" (parsed JSON or null)}
recorded by crates/service/tests/it/openapi.rs from the real router. Every sample must match
the response schema the document gives for its operation and status (or `default`), every
request body its requestBody schema, and every operation in the document must have been
called with a documented 2xx answer. Validation: jsonschema, Draft 2020-12 (OpenAPI 3.1's
dialect). Prints each problem; exit status 1 when there is any.
"""

import json
import sys

import jsonschema


def main(doc_path, samples_path):
    doc = json.load(open(doc_path))
    samples = json.load(open(samples_path))
    problems = []
    components = doc.get("components", {})

    def resolve(obj):
        while isinstance(obj, dict) and "$ref" in obj and obj["$ref"].startswith("#/components/"):
            _, _, kind, name = obj["$ref"].split("/")
            obj = components[kind][name]
        return obj

    def check(schema, value, what):
        # Root the schema in a document holding the components, so #/components/... resolves.
        rooted = dict(schema)
        rooted["components"] = components
        v = jsonschema.Draft202012Validator(rooted)
        for err in sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{what}: at /{path}: {err.message[:300]}")

    jsonschema.Draft202012Validator.check_schema(
        {"components": components, "$ref": "#/components/schemas/Error"}
    )
    seen_ok = set()
    for s in samples:
        method, path, status = s["method"].lower(), s["path"], s["status"]
        what = f"{s['method']} {path} -> {status}"
        if path == "*":
            # An unrouted path or method: the router's own 404 / 405, always an Error body.
            check({"$ref": "#/components/schemas/Error"}, s["body"], what)
            continue
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            problems.append(f"{what}: the document has no such operation")
            continue
        responses = op.get("responses", {})
        resp = resolve(responses.get(str(status)) or responses.get("default"))
        if resp is None:
            problems.append(f"{what}: status {status} is not documented (and no default)")
            continue
        content = resp.get("content", {})
        ctype = s["content_type"].split(";")[0].strip()
        if ctype not in content:
            problems.append(f"{what}: content type {ctype!r}, documented {sorted(content)}")
            continue
        check(content[ctype].get("schema", {}), s["body"], what)
        if 200 <= status < 300:
            seen_ok.add((method, path))
        req = op.get("requestBody")
        if s.get("request") is not None and req is not None and 200 <= status < 300:
            check(resolve(req)["content"]["application/json"]["schema"], s["request"], what + " (request)")
    for path, ops in doc["paths"].items():
        for method in ops:
            if (method, path) not in seen_ok:
                problems.append(f"{method.upper()} {path}: never answered 2xx in the samples")
    for p in problems:
        print(p)
    print(f"{len(samples)} responses checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
