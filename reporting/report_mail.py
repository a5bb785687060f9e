"""Report e-mails (alerts and digests): three template files each, rendered by one helper.

`templates/emails/reporting/<name>_subject.txt`, `<name>.txt` and `<name>.html`; sent through
Django's configured mailer (console or file backend in `make run`, SMTP in production).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse


def absolute_url(view_name: str, **kwargs: Any) -> str:
    """A link for an e-mail: the public base URL of this Mailroom (REPORTING_PUBLIC_BASE_URL) + the path."""
    path = reverse(view_name, kwargs=kwargs)
    base = (getattr(settings, "REPORTING_PUBLIC_BASE_URL", "") or "http://localhost:8000").rstrip("/")
    return f"{base}{path}"


def make_message(
    name: str,
    context: dict[str, Any],
    *,
    to: Sequence[str],
    attachments: Sequence[tuple[str, str, str]] = (),
) -> EmailMultiAlternatives:
    """The message `name` for these recipients: text body, HTML alternative, optional attachments."""
    prefix = f"emails/reporting/{name}"
    # A subject is one line: template whitespace and line breaks must not reach the header.
    subject = " ".join(render_to_string(f"{prefix}_subject.txt", context).split())
    text = render_to_string(f"{prefix}.txt", context)
    html = render_to_string(f"{prefix}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=list(to))
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    return message
