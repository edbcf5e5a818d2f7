"""A job's worker carries the request id of the request that published it: the worker's JSON call line
for the job has it, with the job id and the billed figures, and the worker's counters reach /metrics.

The job must run on this module's worker, not on another one listening to the same broker: in a
full run, tests/jobs' session worker (text logs, no metrics dir) is still alive and consumes the
same queues, and took the job about half the time. `sole_consumer` (tests/ops/conftest.py) asks every
other worker to stop consuming the job queues for the test and to resume afterwards.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.jobs.conftest import wait_for
from tests.ops.scraping import delta, scrape

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_logs_the_job_call_with_the_publishing_requests_id(
    metrics_web, json_worker, sole_consumer, user_factory
):
    from claudeapp.accounts.principals import Principal
    from claudeapp.core import logcontext
    from claudeapp.jobs import services
    from claudeapp.jobs.models import Job
    from tests.jobs.conftest import wait_for_status

    request_id, secret = f"req-job-{uuid.uuid4().hex}", f"okapi-{uuid.uuid4().hex}"
    payload = {"model": "claude-haiku-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": secret}]}
    before = scrape(metrics_web.url)
    logcontext.bind(request_id=request_id, surface="api")  # as the web's middleware does for a request
    try:
        job = services.create(principal=Principal.for_user(user_factory()), payload=payload)
    finally:
        logcontext.clear()
    wait_for_status([job.pk], {"succeeded"})
    job = Job.objects.get(pk=job.pk)

    # The worker writes the line after the task returns, a moment after the job row says succeeded.
    wait_for(lambda: bool(_call_lines(json_worker.log_path, request_id)), timeout=15, what="the worker's call line")
    [line] = _call_lines(json_worker.log_path, request_id)
    assert (line["surface"], line["job_id"], line["status"]) == ("jobs", str(job.pk), "complete")
    assert line["model_used"] == job.model_used and line["upstream_request_id"] == job.upstream_request_id
    assert line["cost_micros"] == job.cost_micros > 0 and line["input_tokens"] > 0
    assert secret not in json_worker.log_path.read_text()
    labels = {"surface": "jobs", "status": "complete", "model": job.model_used}
    assert delta(before, scrape(metrics_web.url), "claudeapp_requests_total", **labels) == 1


def _call_lines(log_path: Path, request_id: str) -> list[dict]:
    lines = [json.loads(raw) for raw in log_path.read_text().splitlines() if raw.startswith("{")]
    return [x for x in lines if x.get("event") == "call" and x["request_id"] == request_id]
