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
    }
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            ref = operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
            expected = "AnthropicError" if path.startswith("/anthropic/") else "Error"
            assert ref == f"#/components/schemas/{expected}", path


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
