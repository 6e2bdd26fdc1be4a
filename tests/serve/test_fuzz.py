"""schemathesis against the server's own /openapi.json over real HTTP, serving packages danlu
wrote (digits, iris): no input makes a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from .conftest import running_server

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

# Examples per operation and mode: bounded so the whole fuzz takes seconds, not minutes.
EXAMPLES = 15


def test_no_input_makes_a_server_error(digits_package: Path, table_package: Path) -> None:
    # Not the fragile copy of digits: its 500 on a batch of 1 is deliberate (the model fails).
    with running_server([digits_package, table_package]) as (url, _):
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        labels, failures, calls = [], [], []
        for result in schema.get_all_operations():
            op = result.ok()
            labels.append(op.label)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @given(case=op.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                def call(case) -> None:
                    resp = case.call(base_url=url, timeout=30)
                    calls.append(resp.status_code)
                    if resp.status_code >= 500:
                        failures.append(f"{case.method} {resp.request.url} "
                                        f"body={case.body!r:.200} -> {resp.status_code} "
                                        f"{resp.text[:200]}")
                try:
                    call()
                except Unsatisfiable:  # no way to break an operation that takes no input
                    assert mode == GenerationMode.NEGATIVE
    assert "POST /v2/models/{name}/infer" in labels and "GET /metrics" in labels
    assert len(calls) > 100 and any(400 <= c < 500 for c in calls)
    assert not failures, "\n".join(failures[:10])
