"""Hostile query strings on every API route: bad input is a 4xx with a clear message, never a 500.

Every route and query parameter is taken from the app's own OpenAPI schema, so a route added later
is covered without editing this file.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.test_serving_data import serving_workspaces
from watershop_dagster.serving.api import MAX_OFFSET, create_app

pytestmark = pytest.mark.slow

KEY = "test-key-hostile"
AUTH = {"X-API-Key": KEY}
HOSTILE_VALUES = [
    "99999999999999999999", "-99999999999999999999", "9223372036854775808", "-1", "1e300", "NaN", "inf", "",
    "0x10", "%00", "\x00", "a\u202eb", "'; drop table transactions; --", "x" * 5000, "0001-01-01",
    "9999-12-31", "99999-01-01", "2024-02-30", "2024-01-01T00:00", "null", "true", "[]",
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    workspaces = serving_workspaces(tmp_path_factory)
    with TestClient(create_app(workspaces.full, api_key=KEY), raise_server_exceptions=False) as client:
        yield client


def routes(client: TestClient) -> list[tuple[str, list[str]]]:
    schema = client.get("/openapi.json").json()
    found = []
    for path, operations in schema["paths"].items():
        parameters = operations["get"].get("parameters", [])
        found.append((path, [p["name"] for p in parameters if p["in"] == "query"]))
    return found


def fill(path: str) -> str:
    return path.replace("{customer_id}", "c1")


def test_every_query_parameter_of_every_route_rejects_hostile_values_without_a_500(client):
    checked, errors = 0, []
    for path, names in routes(client):
        for name in names:
            for value in HOSTILE_VALUES:
                response = client.get(fill(path), params={name: value}, headers=AUTH)
                if response.status_code >= 500:
                    errors.append((path, name, value[:30], response.status_code, response.text[:200]))
                checked += 1
    assert not errors, "\n".join(map(str, errors))
    assert checked > 200


@pytest.mark.parametrize("value", ["%00", "x" * 5000, "a\u202eb", "%2e%2e", "'; --"])
def test_hostile_path_ids_are_a_404_not_a_500(client, value):
    for path in ("/v1/customers/{customer_id}", "/v1/customers/{customer_id}/visits"):
        response = client.get(path.replace("{customer_id}", value), headers=AUTH)
        assert response.status_code == 404, (path, response.text)


def test_offset_beyond_the_bound_is_a_clear_422(client):
    paginated = [path for path, names in routes(client) if "offset" in names]
    assert len(paginated) >= 5
    for path in paginated:
        response = client.get(fill(path), params={"offset": "99999999999999999999"}, headers=AUTH)
        assert response.status_code == 422, (path, response.text)
        assert f"less than or equal to {MAX_OFFSET}" in response.text
        assert client.get(fill(path), params={"offset": MAX_OFFSET}, headers=AUTH).status_code in (200, 404)
