"""/docs shows every field finance sees: each list endpoint's response model has exactly
the columns of its finance view, and every schema the document refers to is in it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from services.api.app import create_app
from services.api.auth import ApiSettings
from services.ledger.views import VIEWS

LISTS = {
    "/contributions": "contributions", "/bills": "bills", "/budget": "budget_utilisation",
    "/budget/changes": "budget_changes", "/outstanding": "outstanding",
    "/discrepancies": "discrepancies", "/arrears": "arrears",
    "/workers/{nik}/history": "worker_history",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    openapi: dict[str, Any] = create_app("postgresql://unused/db", ApiSettings()).openapi()
    return openapi


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@pytest.mark.parametrize(("path", "view"), LISTS.items())
def test_each_list_documents_the_columns_of_its_view(
    document: dict[str, Any], path: str, view: str
) -> None:
    answer = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    items = resolve(document, resolve(document, answer["schema"])["properties"]["items"])
    row = resolve(document, items["items"])
    assert list(row["properties"]) == list(VIEWS[view].columns)


def test_the_monthly_bill_documents_its_lines_and_totals(document: dict[str, Any]) -> None:
    answer = document["paths"]["/monthly-bill"]["get"]["responses"]["200"]["content"]
    bill = resolve(document, answer["application/json"]["schema"])
    line = resolve(document, bill["properties"]["items"]["items"])
    assert list(line["properties"]) == list(VIEWS["monthly_bill"].columns)


def test_every_reference_resolves_and_the_events_are_documented(
    document: dict[str, Any]
) -> None:
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert names <= set(document["components"]["schemas"])
    body = document["paths"]["/v1/registrations"]["post"]["requestBody"]["content"]
    event = resolve(document, body["application/json"]["schema"]["items"])
    assert {"registered", "deregistered"} <= set(event["discriminator"]["mapping"])


def test_the_list_filters_are_the_same_parameters_everywhere(document: dict[str, Any]) -> None:
    def parameters(path: str) -> dict[str, Any]:
        return {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}

    contributions, arrears, export = (parameters(p) for p in (
        "/contributions", "/arrears", "/export/{view}"))
    for name in ("opd_code", "category", "kecamatan", "nik"):
        assert contributions[name] == arrears[name] == export[name]
    for name in ("period_from", "period_to"):
        assert contributions[name] == export[name] == parameters("/bills")[name]
