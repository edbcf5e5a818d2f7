"""A chat turn answered by a job (queued when Claude was overloaded, or 'run in background')
gets its answer written into the conversation when the job ends, in the job's transaction."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from claudeapp.conversations.models import Conversation, Message
from claudeapp.jobs.models import Job

TERMINAL_TO_MESSAGE = {
    Job.Status.SUCCEEDED: Message.Status.COMPLETE,
    Job.Status.FAILED: Message.Status.FAILED,
    Job.Status.DEAD: Message.Status.FAILED,
    Job.Status.CANCELED: Message.Status.FAILED,
}


@receiver(post_save, sender=Job, dispatch_uid="conversations.job_answers_message")
def job_answers_message(sender: type[Job], instance: Job, **kwargs: Any) -> None:
    status = TERMINAL_TO_MESSAGE.get(instance.status)
    if status is None or not instance.message_ref:
        return
    message = Message.objects.filter(public_id=instance.message_ref, status=Message.Status.QUEUED).first()
    if message is None:
        return
    if status == Message.Status.COMPLETE:
        _apply_job_result(message, instance)
    else:
        message.error_type = instance.last_error_type or instance.status
        message.error_message = f"The background answer {instance.status}: {instance.last_error_message}"[:500]
    message.status = status
    message.save()
    if instance.model_used:
        Conversation.objects.filter(pk=message.conversation_id).update(last_model=instance.model_used)


def _apply_job_result(message: Message, job: Job) -> None:
    result = job.result or {}
    usage = job.usage or {}
    message.content = "".join(b.get("text", "") for b in result.get("content", []) if b.get("type") == "text")
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
