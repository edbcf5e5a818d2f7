"""A chat turn answered by a job (queued when Claude was overloaded, or 'run in background') gets its
answer written into the conversation when the job ends.

`apply` is a terminal hook of the job transitions (settings.JOBS_TERMINAL_HOOKS): jobs call it by
dotted path, in the job's transaction, because the layers let conversations import jobs and not back.
"""

from __future__ import annotations

from claudeapp.conversations.models import Conversation, Message
from claudeapp.jobs.models import Job


def apply(*, job: Job) -> None:
    """Write the ended job into the chat message it answers, if that message still waits for it."""
    if job.status not in Job.TERMINAL or not job.message_ref:
        return
    message = Message.objects.filter(public_id=job.message_ref, status=Message.Status.QUEUED).first()
    if message is None:
        return  # answered already, or no longer waiting (a requeued job whose first run failed)
    if job.status == Job.Status.SUCCEEDED:
        _apply_job_result(message, job)
        message.status = Message.Status.COMPLETE
    else:  # failed, dead or canceled
        message.error_type = job.last_error_type or job.status
        message.error_message = f"The background answer {job.status}: {job.last_error_message}"[:500]
        message.status = Message.Status.FAILED
    message.save()
    if job.model_used:
        Conversation.objects.filter(pk=message.conversation_id).update(last_model=job.model_used)


def _apply_job_result(message: Message, job: Job) -> None:
    result = job.result or {}
    usage = job.usage or {}
    blocks = result.get("content", [])
    message.content = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    message.thinking = "\n\n".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking").strip()
    message.model_used = job.model_used
    message.stop_reason = result.get("stop_reason") or ""
    message.input_tokens = usage.get("input_tokens", 0)
    message.output_tokens = usage.get("output_tokens", 0)
    message.cache_write_tokens = usage.get("cache_creation_input_tokens", 0)
    message.cache_read_tokens = usage.get("cache_read_input_tokens", 0)
    message.cost_micros = job.cost_micros
    message.upstream_request_id = job.upstream_request_id
    message.upstream_message_id = job.upstream_message_id
    message.error_type = message.error_message = ""
