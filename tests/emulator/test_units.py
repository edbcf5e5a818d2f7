"""Fast checks of the pure pieces: markers, fault specs, tokens, text generation, classifier."""

from __future__ import annotations

import pytest

from emulator import classifier, faults, markers, textgen, tokens
from emulator.validation import V2026, validate_request


def test_fault_specs_parse_kind_argument_count_and_model():
    spec = faults.parse_spec("500:1@claude-sonnet-5-5")
    assert (spec.kind, spec.count, spec.model, spec.status) == ("500", 1, "claude-sonnet-5-5", 500)
    cut = faults.parse_spec("stream-cut:5:2")
    assert (cut.kind, cut.arg, cut.count) == ("stream-cut", 5, 2)
    assert faults.parse_spec("stream-cut").arg == 3
    assert faults.parse_spec("429-ms").status == 429
    assert faults.parse_spec("teapot") is None
    assert faults.parse_spec("529:x") is None


def test_markers_are_collected_and_stripped():
    found = markers.parse("hi [[fault:529:2]] [[latency:20]] [[words:12]] [[should-retry:false]] [[nope]]")
    assert found.faults == ["529:2"]
    assert (found.latency_ms, found.words, found.should_retry) == (20, 12, "false")
    assert markers.strip_markers("a [[fault:529]]b") == "a b"
    assert markers.parse("no markers") is markers.EMPTY


def test_token_count_is_ceil_of_chars_over_four_plus_overheads():
    assert tokens.text_tokens("") == 0 and tokens.text_tokens("abcd") == 1 and tokens.text_tokens("abcde") == 2
    req = validate_request(
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "abcdefgh"}]}, V2026
    )
    assert tokens.count_input_tokens(req) == tokens.REQUEST_OVERHEAD + tokens.MESSAGE_OVERHEAD + 2


def test_text_generation_is_deterministic_and_honours_word_counts():
    text = textgen.reply_text("How do tides work?", "claude-sonnet-5-5")
    assert text == textgen.reply_text("How do tides work?", "claude-sonnet-5-5")
    assert "tides" in text and "emulator" in text
    assert len(textgen.reply_text("x", "m", 250).split()) == 250


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Hello!", "simple"),
        ("Translate 'good night' into Spanish", "simple"),
        ("What is the capital of Peru?", "simple"),
        ("Summarize these 500 customer reviews", "bulk"),
        ("\n".join(f"row {i}, a, b" for i in range(12)), "bulk"),
        ("Design a caching strategy for our API and analyze the trade-offs", "complex"),
        ("Why does this crash?\n```python\nprint(x)\n```", "complex"),
        ("Write a short poem about autumn leaves falling in the park", "moderate"),
    ],
)
def test_classifier_labels(text, label):
    assert classifier.classify(text) == label
