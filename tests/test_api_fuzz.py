"""Schemathesis fuzzing of the real server from its own OpenAPI schema: >= 10,000 generated requests.

Valid (positive) and schema-violating (negative) requests for every operation. No response may be a
5xx; every 4xx must name the field it is about; every negative request must be refused with a 4xx.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from test_api import KEY, start

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import negative_data_rejection  # noqa: E402

# Examples per (operation, mode); hypothesis stops early where a schema allows fewer distinct requests.
EXAMPLES = {"/v1/suggest": 1700, "/v1/search": 1700, "/v1/posts": 1700, "/v1/posts/{post_id}": 500, "/health": 50, "/metrics": 50}


def field_names(operation) -> set[str]:
    """Every name a request to `operation` can carry: parameters, body properties and `body` itself."""
    raw = operation.definition.raw
    names = {"body"} | {p["name"].lower() for p in raw.get("parameters", [])}
    body = raw.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = operation.schema.raw_schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    names |= {name.lower() for name in body.get("properties", {})}
    schemes = operation.schema.raw_schema.get("components", {}).get("securitySchemes", {})
    for requirement in raw.get("security", []):  # a protected route's key header is a field too
        names |= {schemes[s]["name"].lower() for s in requirement if schemes.get(s, {}).get("in") == "header"}
    return names


def names_a_field(response: requests.Response, names: set[str]) -> bool:
    """Whether a 4xx body names its field: a validation error's `loc` (an unknown field is named by its own
    name), or a declared field quoted in a message."""
    detail = response.json()["detail"]
    if isinstance(detail, list):
        return all(error["type"] == "extra_forbidden" or {str(part).lower() for part in error["loc"]} & names
                   for error in detail)
    return bool({word.strip("'\"").lower() for word in detail.replace(":", " ").split()} & names)


def accepted_invalid(case, response: requests.Response) -> str | None:
    """Why a negative case was wrongly accepted, by schemathesis's own `negative_data_rejection` check
    (which knows when a mutation cannot survive serialisation, e.g. `user=[]` dropped from the URL)."""
    try:
        case.validate_response(response, checks=[negative_data_rejection])
    except AssertionError as exc:  # schemathesis raises a subclass of AssertionError with the details
        return str(exc)[:500]
    return None


@pytest.fixture()
def fuzz_server(model_dir, tmp_path):
    folder = tmp_path / "fuzzed"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder, TAGATLAS_RATE_LIMIT="1000000", TAGATLAS_RATE_BURST="1000000", TAGATLAS_AUTH_FAILURE_RATE="1000000",
                      TAGATLAS_AUTH_FAILURE_BURST="1000000")
    yield url
    proc.terminate()
    proc.wait(timeout=60)


def test_fuzz_openapi_10k_requests(fuzz_server):
    url = fuzz_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/suggest", "/v1/search", "/v1/posts", "/v1/posts/{post_id}"}
    session = requests.Session()
    sent: Counter = Counter()
    problems: list[str] = []

    def make_check(op, mode, names):
        def check(case):
            # A valid key on positive requests so they reach the model; negative ones keep what was generated.
            headers = {"X-API-Key": KEY} if mode is GenerationMode.POSITIVE else None
            response = case.call(base_url=url, session=session, headers=headers, timeout=60)
            sent[(op.method.upper(), op.path, mode.value, response.status_code // 100)] += 1
            where = f"{op.method.upper()} {op.path} ({mode.value}) -> {response.status_code}: {response.text[:300]}"
            if response.status_code >= 500:
                problems.append(f"server error: {where}\n{case.as_curl_command()}")
            elif response.status_code >= 400 and not names_a_field(response, names):
                problems.append(f"4xx names no field of {sorted(names)}: {where}")
            elif mode is GenerationMode.NEGATIVE and response.status_code < 400 and (why := accepted_invalid(case, response)):
                problems.append(f"invalid request accepted: {where}\n{why}")
        return check

    for op in operations:
        names = field_names(op)
        for mode in GenerationMode:
            run = settings(max_examples=EXAMPLES.get(op.path, 200), deadline=None, database=None, derandomize=True,
                           suppress_health_check=list(HealthCheck), phases=[Phase.generate])(
                given(case=op.as_strategy(mode))(make_check(op, mode, names)))
            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE and op.path in ("/health", "/metrics"), f"{op.path} {mode}: no requests generated"


    total = sum(sent.values())
    summary = json.dumps({" ".join(map(str, k)): v for k, v in sorted(sent.items())}, indent=1)
    kinds = {p.split(": {")[0]: p for p in problems}  # one example of each kind of problem
    assert not problems, f"{len(problems)} problems in {total} requests, e.g.:\n" + "\n".join(list(kinds.values())[:10])
    assert total >= 10_000, f"only {total} requests generated:\n{summary}"
    # the fuzzing really reached the model: valid suggestions, searches and ingests succeeded
    for route in ("POST /v1/suggest positive 2", "GET /v1/search positive 2", "POST /v1/posts positive 2"):
        assert sent[tuple(route.split()[:3]) + (2,)] > 50, summary


# Values no schema generator sends but an attacker does: the JSON text of each replaces one field of a valid request.
HOSTILE_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e309")
HOSTILE_STRINGS = ('"\\ud800"', '"synthetic \\udfff tail"', json.dumps("a" * 100_000), json.dumps("#" + "b" * 5_000))


def _valid_bodies(op) -> list[dict]:
    """JSON bodies of valid requests schemathesis generates for `op`."""
    bodies: list[dict] = []

    @settings(max_examples=15, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])
    @given(case=op.as_strategy(GenerationMode.POSITIVE))
    def collect(case):
        if isinstance(case.body, dict):
            bodies.append(case.body)

    collect()
    return bodies


def test_fuzz_hostile_values_in_every_body_field(fuzz_server):
    """Schemathesis's valid requests, each field in turn replaced by a non-finite number, a lone surrogate or an
    over-long token (raw JSON): never a 5xx, every 4xx names a field and stays small."""
    url = fuzz_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    session = requests.Session()
    problems, sent = [], 0
    for op in (result.ok() for result in schema.get_all_operations()):
        if op.method.upper() != "POST":
            continue
        names = field_names(op)
        for body in _valid_bodies(op)[:10]:
            for field in body:
                for hostile in HOSTILE_NUMBERS + HOSTILE_STRINGS:
                    raw = json.dumps({**body, field: "__HOSTILE__"}).replace('"__HOSTILE__"', hostile)
                    response = session.post(f"{url}{op.path}", data=raw.encode(), timeout=120,
                                            headers={"content-type": "application/json", "X-API-Key": KEY})
                    sent += 1
                    where = f"POST {op.path} {field}={hostile[:20]} -> {response.status_code}: {response.text[:200]}"
                    if response.status_code >= 500:
                        problems.append(f"server error: {where}")
                    elif response.status_code >= 400 and (len(response.content) > 4000 or not names_a_field(response, names)):
                        problems.append(f"4xx too long or naming no field: {where}")
    assert sent > 100 and not problems, f"{len(problems)} problems in {sent} requests, e.g.:\n" + "\n".join(problems[:10])
