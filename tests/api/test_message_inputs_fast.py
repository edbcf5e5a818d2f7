"""The hot path's plain-body check must agree with the serializer it stands in front of: for every
body it accepts, the same validated data; everything else goes to the serializer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudeapp.api.message_inputs import AnthropicMessagesInput, plainly_valid

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.text(max_size=4), st.just(" x "), st.just(""))
blocks = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image", 3])}, optional={"text": scalars}), scalars
    ),
    max_size=3,
)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "system", ""]), "content": st.one_of(scalars, blocks)},
            optional={"extra": scalars},
        ),
        scalars,
    ),
    max_size=3,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(scalars, st.sampled_from(["claude-haiku-4-5", "auto", "m" * 101])),
        "max_tokens": st.one_of(scalars, st.floats(allow_nan=False, allow_infinity=False), st.just("12")),
        "messages": st.one_of(scalars, messages),
        "system": st.one_of(scalars, blocks),
        "metadata": st.one_of(scalars, st.dictionaries(st.text(max_size=3), scalars, max_size=2)),
        "stop_sequences": st.one_of(scalars, st.lists(scalars, max_size=2)),
        "stream": st.one_of(scalars, st.just("true"), st.just(1)),
    },
)


def _serializer(body):
    data = AnthropicMessagesInput(data=body)
    return json.loads(json.dumps(data.validated_data)) if data.is_valid() else None


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_plain_check_agrees_with_the_serializer(body):
    fast = plainly_valid(body)
    if fast is not None:
        assert json.loads(json.dumps(fast)) == _serializer(body)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {
            "model": "auto",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
            "system": [{"type": "text", "text": "s"}],
            "metadata": {"user_id": "u"},
            "stop_sequences": [" END"],
            "stream": True,
        },
    ],
)
def test_the_bodies_partners_send_take_the_plain_path(body):
    assert plainly_valid(body) == _serializer(body)
