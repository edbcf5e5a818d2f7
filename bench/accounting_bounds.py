"""How far the gateway's token bounds sit above what upstream counts, per block type.

    .venv/bin/python bench/accounting_bounds.py

Input: `claudeapp.calls.accounting.local_bound` against the emulator's count_tokens for one request
per block type. Output: `MessageBuilder.billable_usage` (the bound billed for a stream that ends
early) against what the emulator charged for the same stream cut after 1..8 chunks.

The emulator counts ceil(chars / 4) per text; real Claude tokenizers differ, so these figures say
how much the bounds over-hold against the emulator's measure, not against production traffic.
Prints one Markdown table per measure (pasted into docs/billing.md).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import anthropic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudeapp.settings")

import django

django.setup()

from claudeapp.calls import accounting  # noqa: E402
from claudeapp.claude.results import MessageBuilder  # noqa: E402
from emulator.testing import EmulatorProcess  # noqa: E402

MODEL = "claude-haiku-5-5"
PROSE = "Tide pools hold anemones, limpets and small crabs between the tides; " * 40
CODE = "def area(r: float) -> float:\n    return 3.14159 * r * r  # circle\n" * 30
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" * 40).decode()
TOOL = {
    "name": "lookup_tide",
    "description": "Look up the tide table for a beach. " * 20,
    "input_schema": {"type": "object", "properties": {"beach": {"type": "string"}}, "required": ["beach"]},
}

CASES: dict[str, dict] = {
    "text (English prose)": {"messages": [{"role": "user", "content": PROSE}]},
    "text (code)": {"messages": [{"role": "user", "content": CODE}]},
    "system + text": {"system": PROSE, "messages": [{"role": "user", "content": "Summarise."}]},
    "document (text source)": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": PROSE}},
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ]
    },
    "document (base64 PDF)*": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ]
    },
    "image (base64)*": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "What is it?"},
                ],
            }
        ]
    },
    "tools + tool_choice": {
        "tools": [TOOL],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "Tides at Half Moon Bay?"}],
    },
    "tool_use + tool_result in history": {
        "tools": [TOOL],
        "messages": [
            {"role": "user", "content": "Tides at Half Moon Bay?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_tide", "input": {"beach": "HMB"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": PROSE}]},
        ],
    },
    "search_result": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "search_result",
                        "source": "https://example.org/tides",
                        "title": "Tides",
                        "content": [{"type": "text", "text": PROSE}],
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ]
    },
}


def input_table(client: anthropic.Anthropic) -> list[str]:
    rows = ["| block type | local bound | upstream count | bound / count |", "|---|---|---|---|"]
    for name, body in CASES.items():
        bound = accounting.local_bound(
            messages=body["messages"], system=body.get("system"), tools=body.get("tools"),
            tool_choice=body.get("tool_choice"),
        )  # fmt: skip
        counted = client.messages.count_tokens(model=MODEL, **body).input_tokens
        note = " (unsure: counted upstream)" if bound.unsure else ""
        rows.append(f"| {name} | {bound.tokens}{note} | {counted} | {bound.tokens / counted:.2f} |")
    return rows


def output_table(emu: EmulatorProcess, client: anthropic.Anthropic) -> list[str]:
    rows = ["| reply | cut after chunks | billed bound | emulator charge | bound / charge |", "|---|---|---|---|---|"]
    kinds = {
        "text": {"messages": [{"role": "user", "content": "Tell me about tide pools."}]},
        "tool_use": {
            "tools": [TOOL],
            "tool_choice": {"type": "any"},
            "messages": [{"role": "user", "content": "Tides?"}],
        },
    }
    for name, body in kinds.items():
        for cut in (1, 3, 8):
            emu.clear_charges()
            marked = json.loads(json.dumps(body))
            marked["messages"][0]["content"] = f"[[fault:stream-cut:{cut}]] " + marked["messages"][0]["content"]
            builder = MessageBuilder(max_tokens=1000)
            with client.messages.with_streaming_response.create(
                model=MODEL, max_tokens=1000, stream=True, **marked
            ) as resp:
                try:
                    for sse in anthropic.Stream.raw_events(resp.http_response):  # type: ignore[attr-defined]
                        builder.feed(sse.event, sse.data)
                except Exception:  # the cut itself
                    pass
            billed = builder.billable_usage["output_tokens"]
            charge = emu.charges()[-1]["usage"]["output_tokens"]
            rows.append(f"| {name} | {cut} | {billed} | {charge} | {billed / charge:.2f} |")
    return rows


def main() -> None:
    with EmulatorProcess.start() as emu:
        client = anthropic.Anthropic(base_url=emu.url, api_key="bench", max_retries=0)
        print("\n".join(input_table(client)))
        print()
        print("\n".join(output_table(emu, client)))


if __name__ == "__main__":
    main()
