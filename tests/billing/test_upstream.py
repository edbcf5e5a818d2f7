from __future__ import annotations

from billing.upstream import give_back, observe_upstream, upstream_wait_seconds

MODEL = "claude-opus-5-5"


def _headers(axis: str, limit: int, remaining: int) -> dict[str, str]:
    return {
        f"anthropic-ratelimit-{axis}-limit": str(limit),
        f"anthropic-ratelimit-{axis}-remaining": str(remaining),
        f"anthropic-ratelimit-{axis}-reset": "2026-11-25T12:00:30Z",
    }


def test_nothing_learned_yet_means_go():
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=100_000) == 0


def test_the_last_requests_the_org_has_left_go_and_the_next_waits_for_the_refill():
    observe_upstream(model_id=MODEL, headers=_headers("requests", limit=60, remaining=2))
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
    wait = upstream_wait_seconds(model_id=MODEL, input_tokens=10)
    assert 0 < wait <= 1.0  # 60 per minute refills one a second


def test_a_take_given_back_is_room_again_and_never_more_than_the_limit():
    give_back(model_id=MODEL, input_tokens=10)  # nothing learned: nothing to give back to
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
    observe_upstream(model_id=MODEL, headers=_headers("requests", 2, 1))
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0  # the last one taken
    give_back(model_id=MODEL, input_tokens=10)  # its call was refused before it was sent
    give_back(model_id=MODEL, input_tokens=10)  # one too many: capped at the limit
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) > 0  # two, not three


def test_input_tokens_wait_until_the_bucket_has_room_for_the_prompt():
    observe_upstream(model_id=MODEL, headers={**_headers("input-tokens", limit=60_000, remaining=1000)})
    wait = upstream_wait_seconds(model_id=MODEL, input_tokens=5000)
    assert 3.9 < wait <= 4.0  # 4000 short at 1000 tokens a second
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=500) == 0  # a small one still fits


def test_limits_are_learned_per_model_and_header_case_does_not_matter():
    observe_upstream(model_id=MODEL, headers={k.title(): v for k, v in _headers("tokens", 1000, 0).items()})
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=100) > 0
    assert upstream_wait_seconds(model_id="claude-haiku-5-5", input_tokens=100) == 0


def test_the_emulators_response_headers_are_understood(anthropic_client, emulator_reset):
    raw = anthropic_client.messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello"}]
    )
    assert any(h.startswith("anthropic-ratelimit-") for h in raw.headers)
    observe_upstream(model_id=MODEL, headers=raw.headers)
    assert upstream_wait_seconds(model_id=MODEL, input_tokens=10) == 0
