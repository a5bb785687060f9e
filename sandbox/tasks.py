"""Celery entry points of the sandbox: thin wrappers over `sandbox.webhooks`."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from sandbox import webhooks
from sandbox.models import SandboxEventWebhook

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def dispatch_events() -> dict[str, int]:
    """Claim due events and post their webhooks. Enqueued after each injection and swept by beat."""
    if not settings.SANDBOX_ENABLED:
        return {"events": 0, "posts": 0}
    stats = webhooks.dispatch_due()
    return {"events": stats.events, "posts": stats.posts}


@shared_task(ignore_result=True)
def validate_endpoint(endpoint_id: int) -> bool:
    """Post the Validation event to one endpoint (for callers that prefer not to wait on it)."""
    endpoint = SandboxEventWebhook.objects.select_related("server").filter(pk=endpoint_id).first()
    if endpoint is None:
        return False
    return webhooks.validate_endpoint(endpoint)


def enqueue_dispatch() -> None:
    """Wake a worker after an injection commits. A broker outage only delays posting: beat sweeps too."""
    try:
        dispatch_events.delay()
    except Exception:  # the injection has committed; never fail it over the broker
        logger.warning("sandbox: could not enqueue webhook dispatch; the beat sweep will pick it up", exc_info=True)
