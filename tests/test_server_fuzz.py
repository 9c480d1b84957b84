"""Schemathesis against the OpenAPI schema, for a bounded number of examples per route: whatever
it sends, the server answers 2xx or 4xx, never 5xx. Authenticated as a reader, so that the
generated requests reach the routes' own validation rather than stop at the key check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import labledger as ll
from labledger.access import Access
from labledger.server import Limits, create_app

_KEY: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from labledger.sim import build

    la = ll.init(tmp_path_factory.mktemp("fuzz") / "archive")
    build(la, Path(tmp_path_factory.mktemp("daq")), [1233])
    access = Access(la.catalog)
    access.add_user("fuzz", project="default", role="reader", by="tests")
    _KEY["reader"] = access.create_key("fuzz", scopes=["read"])
    app = create_app(la, limits=Limits(max_response_bytes=1 << 20))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    la.close()


def test_no_request_gets_a_server_error(api_schema: Any) -> None:
    # schemathesis' own pytest plugin does not run under this pytest; its strategies do
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            if case.path.endswith("/notifications") or "/follow/" in case.path:  # a stream:
                # bounded, or it never ends
                case.query = {**(case.query or {}), "timeout": 0.2}
            response = case.call(headers={"Authorization": f"Bearer {_KEY['reader']}"})
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

        check()
