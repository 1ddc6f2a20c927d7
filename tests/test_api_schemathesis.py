"""schemathesis against a running `speakerctl serve`: every operation of /api/v1 with generated input,
no 5xx, and every answer as the OpenAPI document says (status, content type, schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from api_server import Served, served
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from speakerctl.app.context import open_store
from speakerctl.config import Settings
from speakerctl.web import public
from speakerctl.web.api import OPERATIONS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("api")) as running:
        yield running


MAX_EXAMPLES = 5
"""Generated requests per operation: 28 operations × 5 take about half a minute."""
# Left out: "a schema-valid request is accepted". The document cannot say every rule (that a date
# exists, a cron expression parses, a target is in the fleet), so such a request may still get 400.


def test_the_api_answers_as_its_document_says(server: Served) -> None:
    schema = schemathesis.openapi.from_url(server.url + "api/v1/openapi.json")
    # An administrator of every zone reaches every path; a commune operator meets the 403s and 404s.
    users = st.sampled_from([server.admin_token, server.operator_token])
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own path; the public feed is checked with the API.
    assert len(operations) == len(OPERATIONS) + len(public.OPERATIONS) - 1
    answered: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy(), token=users)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, token: str) -> None:
            auth = {"Authorization": f"Bearer {token}"}
            response = case.call_and_validate(
                headers=auth, timeout=30, excluded_checks=[positive_data_acceptance]
            )
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        check()
    # Generated XML is never a valid CAP alert: refused with the reason (422), never a 5xx.
    assert answered["POST /api/v1/cap/alerts"] == {422}, answered
    assert answered["GET /public/v1/zones/{zone}/aired.json"] <= {200, 404}


def test_the_served_store_still_opens(server: Served) -> None:
    with open_store(Settings(data_dir=server.data_dir), sync_inventory=False) as store:
        assert store.broadcasts.get("bc-seeded").bulletin_id == 1
