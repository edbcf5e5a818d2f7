from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from django.core.management import call_command

CASES = Path(__file__).resolve().parents[1] / "data" / "routing_cases.jsonl"


def test_the_evaluation_set_is_large_varied_and_well_formed():
    cases = [json.loads(line) for line in CASES.read_text().splitlines()]
    assert len(cases) >= 150
    assert {c["expected"] for c in cases} == {"simple", "moderate", "complex", "bulk"}
    assert len({c["prompt"] for c in cases}) == len(cases)


def test_routing_eval_prints_accuracy_a_confusion_matrix_and_costs(model_map, classifier_emulator, tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "\n".join(
            json.dumps(c)
            for c in [
                {"prompt": "Hello!", "expected": "simple"},
                {"prompt": "Prove that sqrt 3 is irrational.", "expected": "complex"},
                {"prompt": "Write a friendly note to the team about Friday lunch.", "expected": "moderate"},
                {"prompt": "For each of the following rows, tag the sentiment:\n1. ok\n2. bad", "expected": "bulk"},
            ]
        )
    )
    out = StringIO()
    call_command("routing_eval", cases=cases, stdout=out)
    report = out.getvalue()
    assert "Accuracy: 100.0% (4/4)" in report
    assert "Confusion" in report and "always Opus" in report and "always Sonnet" in report
