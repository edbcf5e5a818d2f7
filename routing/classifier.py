"""The tier classifier: one small Haiku call that labels a request simple, moderate, complex or bulk.

Fail-safe by design: any failure (unparseable reply, timeout, 429/5xx/529, connection error)
returns no label and says why, and the router then falls back to the `moderate` tier (Sonnet).
Labels are cached in Redis by a hash of the classified text, so a repeated prompt costs no call.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from claudeapp.claude.client import get_async_client, get_client
from routing.errors import RoutingError
from routing.modelmap import ModelMap

log = logging.getLogger(__name__)

LABELS = ("simple", "moderate", "complex", "bulk")
PROMPT_VERSION = "ROUTER-CLASSIFY-V1"
# Short and fixed: the marker lets the offline emulator recognise the call and answer a heuristic label.
SYSTEM_PROMPT = f"""{PROMPT_VERSION}
You route requests to models. Reply with exactly one word, nothing else:
simple - greetings, thanks, translations, quick facts, short rewrites
moderate - everyday writing, emails, summaries, ordinary code help and explanations
complex - hard reasoning: proofs, architecture, tricky debugging, legal/medical/financial analysis, long multi-step work
bulk - one task repeated over many items, rows, records or documents"""
MAX_TOKENS = 5


@dataclass(frozen=True)
class ClassifierUsage:
    """Tokens the classifier call used; the caller writes them as a separate ledger line."""

    model_id: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Classification:
    label: str | None  # None when classification failed; the router then uses `moderate`
    confidence: float | None = None
    usage: ClassifierUsage | None = None
    cached: bool = False
    error: str = ""


def parse_label(reply: str) -> tuple[str, float] | None:
    """Strictly one of LABELS, tolerating case, whitespace and trailing punctuation.

    The API gives no probabilities, so confidence only says how clean the reply was:
    1.0 for exactly the label, 0.9 when it needed normalising.
    """
    cleaned = reply.strip().strip(".!'\"`").strip().lower()
    if cleaned not in LABELS:
        return None
    return cleaned, 1.0 if reply == cleaned else 0.9


def cache_key(model_id: str, text: str) -> str:
    digest = hashlib.sha256(f"{PROMPT_VERSION}\0{model_id}\0{text}".encode()).hexdigest()
    return f"routing:cls:{digest}"


def classifier_model(mm: ModelMap) -> str:
    return mm.resolve(settings.ROUTER_CLASSIFIER_MODEL)


def cached(text: str, mm: ModelMap) -> Classification | None:
    """The cached label for this text, or None (never calls Claude: used by replay and by classify)."""
    try:
        model_id = classifier_model(mm)
        hit = cache.get(cache_key(model_id, text))
    except (RoutingError, Exception):  # unknown model or Redis down: just no cache
        return None
    return _from_cache(hit)


def classify(text: str, *, mm: ModelMap) -> Classification:
    try:
        model_id = classifier_model(mm)
    except RoutingError as exc:
        return Classification(label=None, error=f"classifier model unavailable ({exc})")
    key = cache_key(model_id, text)
    hit = _cache_get(key)
    if hit is not None:
        return hit
    try:
        message = get_client().messages.create(**_params(model_id, text))
    except Exception as exc:  # every failure means "unclear": Sonnet answers, the request never fails here
        return _failed(exc)
    return _finish(key, model_id, message)


async def aclassify(text: str, *, mm: ModelMap) -> Classification:
    try:
        model_id = classifier_model(mm)
    except RoutingError as exc:
        return Classification(label=None, error=f"classifier model unavailable ({exc})")
    key = cache_key(model_id, text)
    hit = await _acache_get(key)
    if hit is not None:
        return hit
    try:
        message = await get_async_client().messages.create(**_params(model_id, text))
    except Exception as exc:
        return _failed(exc)
    result = _parse_message(model_id, message)
    if result.label is not None:
        await _acache_set(key, result)
    return result


def _params(model_id: str, text: str) -> dict[str, object]:
    # No temperature: API version 2026-10-21 refuses it and SDK 2.x cannot send it.
    return {
        "model": model_id,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": text or "(empty)"}],
        "timeout": settings.ROUTER_CLASSIFIER_TIMEOUT_SECONDS,
    }


def _finish(key: str, model_id: str, message: object) -> Classification:
    result = _parse_message(model_id, message)
    if result.label is not None:
        _cache_set(key, result)
    return result


def _parse_message(model_id: str, message) -> Classification:  # type: ignore[no-untyped-def]
    usage = ClassifierUsage(model_id, message.usage.input_tokens, message.usage.output_tokens)
    reply = "".join(getattr(b, "text", "") for b in message.content)
    parsed = parse_label(reply)
    if parsed is None:
        return Classification(label=None, usage=usage, error=f"classifier reply not a label ({reply[:20]!r})")
    return Classification(label=parsed[0], confidence=parsed[1], usage=usage)


def _failed(exc: Exception) -> Classification:
    name = type(exc).__name__
    if "Timeout" in name or isinstance(exc, TimeoutError):
        why = f"classifier timed out after {settings.ROUTER_CLASSIFIER_TIMEOUT_SECONDS:g}s"
    elif getattr(exc, "status_code", None):
        why = f"classifier failed (HTTP {exc.status_code} {name})"  # type: ignore[attr-defined]
    else:
        why = f"classifier failed ({name})"
    log.warning("router classifier: %s", why)
    return Classification(label=None, error=why)


def _encode(result: Classification) -> str:
    return f"{result.label}|{result.confidence}"


def _from_cache(hit: object) -> Classification | None:
    if not isinstance(hit, str) or "|" not in hit:
        return None
    label, _, confidence = hit.partition("|")
    return Classification(label=label, confidence=float(confidence), cached=True) if label in LABELS else None


def _cache_get(key: str) -> Classification | None:
    try:
        return _from_cache(cache.get(key))
    except Exception:  # Redis down: classify without the cache
        return None


def _cache_set(key: str, result: Classification) -> None:
    try:
        cache.set(key, _encode(result), timeout=settings.ROUTER_CLASSIFIER_CACHE_SECONDS)
    except Exception:
        log.warning("router classifier: could not cache a label")


async def _acache_get(key: str) -> Classification | None:
    try:
        return _from_cache(await cache.aget(key))
    except Exception:
        return None


async def _acache_set(key: str, result: Classification) -> None:
    try:
        await cache.aset(key, _encode(result), timeout=settings.ROUTER_CLASSIFIER_CACHE_SECONDS)
    except Exception:
        log.warning("router classifier: could not cache a label")
