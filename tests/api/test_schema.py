from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_with_the_partner_endpoints(schema):
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/models", "/api/v1/me", "/anthropic/v1/models"):
        assert path in schema["paths"], path


def test_the_schema_offers_bearer_or_x_api_key(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["PartnerKeyBearer"] == {**schemes["PartnerKeyBearer"], "type": "http", "scheme": "bearer"}
    assert schemes["PartnerKeyHeader"]["in"] == "header" and schemes["PartnerKeyHeader"]["name"] == "x-api-key"
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"PartnerKeyBearer": []}, {"PartnerKeyHeader": []}]


def test_every_operation_documents_the_error_shape(schema):
    assert set(schema["components"]["schemas"]["Error"]["properties"]["error"]["properties"]) == {
        "type",
        "message",
        "field",
        "budget",  # on a 402
        "limit",  # on a 429
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            ref = operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
            expected = "AnthropicError" if path.startswith("/anthropic/") else "Error"
            assert ref == f"#/components/schemas/{expected}", path


def _site_schema(client, settings):
    settings.ROOT_URLCONF = "claudeapp.urls"  # every route of the site, jobs included
    return client.get("/api/schema/?format=json").json()


def test_billed_operations_document_402_429_and_529_with_their_headers(client, settings):
    paths = _site_schema(client, settings)["paths"]
    for path, method in (("/api/v1/messages", "post"), ("/api/v1/jobs", "post"), ("/anthropic/v1/messages", "post")):
        responses = paths[path][method]["responses"]
        assert {"402", "413", "429", "529"} <= set(responses), path
        assert set(responses["402"]["headers"]) >= {"X-Budget-Remaining", "X-Budget-Reset", "X-Request-Id"}
        assert "Retry-After" in responses["429"]["headers"] and "Retry-After" in responses["529"]["headers"]
    assert "503" not in paths["/api/v1/messages"]["post"]["responses"]  # overload is 529 everywhere
    routed = paths["/api/v1/messages"]["post"]["responses"]["200"]["headers"]
    assert {"X-Route-Model", "X-RateLimit-Remaining-Requests"} <= set(routed)


def test_every_response_documents_the_request_id_header(client, settings):
    for path, operations in _site_schema(client, settings)["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                assert "X-Request-Id" in response.get("headers", {}), (path, status)


def test_the_jobs_operations_document_the_replay_conflicts_and_list_filters(client, settings):
    paths = _site_schema(client, settings)["paths"]
    create = paths["/api/v1/jobs"]["post"]["responses"]
    assert "200" not in create and {"Location", "Idempotent-Replayed"} <= set(create["202"]["headers"])
    assert "409" in create and "409" in paths["/api/v1/jobs/{job_id}/cancel"]["post"]["responses"]
    listing = paths["/api/v1/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "status",
        "created_after",
        "created_before",
        "limit",
        "cursor",
    }
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    job = _site_schema(client, settings)["components"]["schemas"]
    assert set(job[page]["properties"]) == {"data", "has_more", "next", "previous"}
    assert "eta" in job["JobOutput"]["properties"]


def test_the_docs_page_renders_with_no_external_urls(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = [url for url in re.findall(r"""(?:src|href)=["']([^"']+)""", html) if re.match(r"(https?:)?//", url)]
    assert external == []
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_the_swagger_assets_are_served_locally(client):
    html = client.get("/api/docs/").content.decode()
    asset = re.search(r"""src=["']([^"']*swagger-ui-bundle\.js)""", html).group(1)
    from django.contrib.staticfiles import finders

    assert finders.find(asset.removeprefix("/static/"))


def test_the_site_urlconf_serves_the_api_at_the_root(client, settings):
    settings.ROOT_URLCONF = "claudeapp.urls"
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/anthropic/v1/models").json()["type"] == "error"
