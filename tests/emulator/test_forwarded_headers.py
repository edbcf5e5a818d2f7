"""The emulator records the API version and betas each call carried, so a proxy's tests (the
gateway's /anthropic surface) can check what it forwarded upstream."""

from __future__ import annotations

from tests.emulator.conftest import params


def test_recent_calls_record_the_version_and_betas_they_carried(emulator_reset, anthropic_client):
    anthropic_client.messages.create(**params("plain"))
    anthropic_client.beta.messages.create(
        **params("with betas"), betas=["files-api-2025-04-14", "mcp-client-2025-04-04"]
    )
    anthropic_client.messages.create(**params("older"), extra_headers={"anthropic-version": "2023-06-01"})
    plain, beta, older = emulator_reset.stats()["recent"]
    assert (plain["version"], plain["beta"]) == ("2026-10-21", None)
    assert (beta["version"], beta["beta"]) == ("2026-10-21", "files-api-2025-04-14,mcp-client-2025-04-04")
    assert (older["version"], older["beta"]) == ("2023-06-01", None)
