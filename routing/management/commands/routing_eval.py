"""`manage.py routing_eval`: accuracy and cost of the router over tests/data/routing_cases.jsonl."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from claudeapp.claude import client
from routing import evaluation, modelmap

DEFAULT_CASES = Path(settings.BASE_DIR) / "tests" / "data" / "routing_cases.jsonl"


class Command(BaseCommand):
    help = "Run the seeded (or published) rules and the classifier over labelled prompts; print accuracy and cost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
        parser.add_argument("--rules", choices=["seeded", "published"], default="seeded")
        parser.add_argument("--start-emulator", action="store_true", help="Start a private emulator (offline run).")
        parser.add_argument("--show-misses", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per classifier call drowns the report
        logging.getLogger("httpx").setLevel(logging.WARNING)
        emulator = None
        if options["start_emulator"]:
            from emulator.testing import EmulatorProcess  # dev tool, only for this option

            emulator = EmulatorProcess.start()
            settings.ANTHROPIC_BASE_URL = emulator.url
            client.reset_clients()
        try:
            mm = modelmap.get_model_map()
            rules = evaluation.seeded_rules() if options["rules"] == "seeded" else mm.rules
            result = evaluation.evaluate(evaluation.load_cases(options["cases"]), rules)
        finally:
            if emulator is not None:
                emulator.stop()
        self._report(result, options)

    def _report(self, r: evaluation.EvalResult, options: dict[str, Any]) -> None:
        w = self.stdout.write
        w(f"Upstream: {settings.ANTHROPIC_BASE_URL}   rules: {options['rules']}   cases: {r.total}")
        w(f"Accuracy: {r.accuracy():.1%} ({r.correct}/{r.total})")
        for tier in evaluation.TIERS:
            w(f"  {tier:<9} {r.accuracy(tier):.1%}")
        w("Confusion (rows = expected, columns = routed):")
        w("           " + "".join(f"{t:>10}" for t in evaluation.TIERS))
        for expected in evaluation.TIERS:
            w(f"  {expected:<9}" + "".join(f"{r.confusion[(expected, got)]:>10}" for got in evaluation.TIERS))
        routed = r.routed_micros + r.classifier_micros
        w(f"Cost (input as estimated + {evaluation.ASSUMED_OUTPUT_TOKENS} output tokens per request):")
        calls = f"{r.classifier_calls} classifier calls ${r.classifier_micros / 1e6:.4f}"
        w(f"  routed mix  ${routed / 1e6:.4f} (incl. {calls})")
        w(f"  always Opus ${r.opus_micros / 1e6:.4f}  -> routed is {routed / r.opus_micros:.0%} of it")
        w(f"  always Sonnet ${r.sonnet_micros / 1e6:.4f}  -> routed is {routed / r.sonnet_micros:.0%} of it")
        w(f"  prices from: {', '.join(sorted(r.prices_from))}")
        if options["show_misses"]:
            for expected, got, prompt in r.misses:
                w(f"  miss: expected {expected:<8} got {got:<8} {prompt}")
