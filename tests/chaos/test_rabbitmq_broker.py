"""The job path over RabbitMQ (docs/deploy.md): a web process publishing to an amqp:// broker and a
real worker consuming from it, on a vhost of our own on the machine's RabbitMQ (scripts/test.sh
starts it when it is down; only our vhost's queues are ever purged)."""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from kombu import Connection

from tests.chaos import harness
from tests.chaos.harness import Cluster

VHOST = "claudeapp_test"
pytestmark = pytest.mark.timeout(900)  # may be the first test to start the cluster


@pytest.fixture(scope="module")
def amqp_url() -> str:
    url = harness.rabbitmq_url(VHOST)
    if url is None:
        pytest.skip("RabbitMQ does not answer on 127.0.0.1:5672 (scripts/ensure_rabbitmq.sh starts it)")
    with Connection(url) as conn:  # messages of an earlier run, in our own vhost only
        channel = conn.default_channel
        for queue in ("interactive", "bulk"):
            try:
                channel.queue_purge(queue)
            except Exception:  # a queue not declared yet has nothing to purge
                channel = conn.channel()
    return url


def test_a_job_published_by_a_web_process_runs_on_a_worker_over_rabbitmq(chaos_cluster: Cluster, amqp_url: str):
    cluster = chaos_cluster
    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side: each is a Django start-up of seconds
        starting = [pool.submit(cluster.spawn_web, CELERY_BROKER_URL=amqp_url),
                    pool.submit(cluster.spawn_worker, CELERY_BROKER_URL=amqp_url)]  # fmt: skip
    failed = [f.exception() for f in starting if f.exception() is not None]
    if failed:
        for started in [f.result() for f in starting if f.exception() is None]:
            started.stop()
        raise failed[0]
    web, worker = starting[0].result(), starting[1].result()
    try:
        status, body = 0, {}
        for _ in range(3):
            status, body = cluster.readyz_url(web.url)
            if status == 200:
                break
        assert status == 200 and body["checks"]["broker"] == "ok", body  # /readyz checks the amqp broker
        since = cluster.mark()

        [job_id] = [cluster.submit_job("A job over RabbitMQ", url=web.url)]
        assert job_id, "the web process did not accept the job"
        cluster.wait_jobs([job_id], timeout=60)

        def calls() -> list[dict]:  # the worker writes the job's call line just after the job's end commits
            lines = [json.loads(raw) for raw in worker.log_path.read_text().splitlines() if raw.startswith("{")]
            return [line for line in lines if line.get("event") == "call" and line.get("job_id") == job_id]

        with contextlib.suppress(TimeoutError):
            harness.wait_until(lambda: bool(calls()), timeout=10, what="the job's call line")
        assert [line["status"] for line in calls()] == ["complete"], worker.log()  # run by the amqp worker
        assert "amqp://guest:**@127.0.0.1:5672/" + VHOST in worker.log_path.read_text()
        billing = cluster.billing(since=since)
        assert [(kind, subject) for _, kind, subject in billing.rows] == [("job", job_id)]
        assert billing.double_billed == billing.unbilled == 0
    finally:
        worker.stop()
        web.stop()
