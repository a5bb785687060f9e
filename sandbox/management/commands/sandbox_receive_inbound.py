"""`manage.py sandbox_receive_inbound --server 10101 --eml message.eml` (or --from/--to/--subject/...).

Simulates SocketLabs receiving one message for a sandbox server and posting it, parsed, to the
server's inbound endpoint. Prints the endpoint's answer.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import inbound
from sandbox.models import SandboxInboundEndpoint, SandboxServer


class Command(BaseCommand):
    help = "Receive one inbound message on a sandbox server and post it to the server's inbound endpoint."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", type=int, help="Sandbox server id (e.g. 10101).")
        parser.add_argument("--endpoint", type=int, help="Inbound endpoint id (instead of matching by recipient).")
        parser.add_argument("--eml", type=Path, help="An .eml file to receive.")
        parser.add_argument("--from", dest="from_", default="", help="Sender, e.g. 'Ann <ann@example.org>'.")
        parser.add_argument("--to", default="", help="Recipient (with --eml: overrides the envelope recipient).")
        parser.add_argument("--cc", default="")
        parser.add_argument("--subject", default="")
        parser.add_argument("--text", default="")
        parser.add_argument("--html", default="")
        parser.add_argument("--attach", type=Path, action="append", default=[], help="A file to attach (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        target = self._target(options)
        attachments = []
        for path in options["attach"]:
            if not path.is_file():
                raise CommandError(f"Attachment {path} does not exist.")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attachments.append(inbound.InboundAttachment(path.name, path.read_bytes(), content_type))
        eml: bytes | None = None
        if options["eml"] is not None:
            if not options["eml"].is_file():
                raise CommandError(f"{options['eml']} does not exist.")
            eml = options["eml"].read_bytes()
        try:
            post = inbound.receive(
                target,
                from_=options["from_"],
                to=options["to"],
                cc=options["cc"],
                subject=options["subject"],
                text=options["text"],
                html=options["html"],
                attachments=attachments,
                eml_bytes=eml,
            )
        except inbound.InboundError as exc:
            raise CommandError(str(exc)) from exc
        outcome = f"HTTP {post.status_code}" if post.status_code is not None else post.error
        validated = "validation key returned" if post.validated else "validation key NOT returned"
        self.stdout.write(f"Posted to {post.endpoint.url}: {outcome}, {validated}.")
        if post.error and post.status_code is not None:
            self.stderr.write(post.error)

    def _target(self, options: dict[str, Any]) -> SandboxServer | SandboxInboundEndpoint:
        if options["endpoint"] is not None:
            endpoint = SandboxInboundEndpoint.objects.select_related("server").filter(pk=options["endpoint"]).first()
            if endpoint is None:
                raise CommandError(f"No inbound endpoint with id {options['endpoint']}.")
            return endpoint
        if options["server"] is None:
            raise CommandError("Give --server (the sandbox server id) or --endpoint.")
        server = SandboxServer.objects.filter(server_id=options["server"]).first()
        if server is None:
            raise CommandError(f"No sandbox server {options['server']}.")
        return server
