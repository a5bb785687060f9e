"""Helpers for the sandbox's sending-side tests: request builders and a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from django.test import Client

INJECT_PATH = "/sandbox/inject/api/v1/email"


def message(**overrides: Any) -> dict[str, Any]:
    """A valid basic message in the documented PascalCase."""
    base: dict[str, Any] = {
        "From": {"EmailAddress": "shop@example.com", "FriendlyName": "Shop"},
        "To": [{"EmailAddress": "ann@example.net", "FriendlyName": "Ann"}],
        "Subject": "Your order",
        "TextBody": "Thanks for your order.",
        "HtmlBody": '<p>Thanks! <a href="https://example.com/orders/42">Track it</a></p>',
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def request_body(server_id: int, *messages: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ServerId": server_id, "Messages": list(messages) or [message()]}
    if api_key is not None:
        body["ApiKey"] = api_key
    return body


def post_injection(
    client: Client, body: Any, *, key: str | None = None, accept: str = "application/json", raw: bytes | None = None
) -> Any:
    headers = {"Accept": accept}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    payload = raw if raw is not None else json.dumps(body)
    return client.post(INJECT_PATH, data=payload, content_type="application/json; charset=utf-8", headers=headers)


def merge_rows(count: int, *, domain: str = "example.net") -> list[list[dict[str, str]]]:
    return [
        [
            {"Field": "DeliveryAddress", "Value": f"user{i}@{domain}"},
            {"Field": "RecipientName", "Value": f"User {i}"},
            {"Field": "FirstName", "Value": f"First{i}"},
        ]
        for i in range(count)
    ]


def merge_message(rows: list[list[dict[str, str]]], **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "To": [{"EmailAddress": "%%DeliveryAddress%%", "FriendlyName": "%%RecipientName%%"}],
        "Subject": "Hello %%FirstName%%",
        "TextBody": "Hi %%FirstName%%, %%Motto%%",
        "HtmlBody": "<p>Hi %%FirstName%%</p>",
        "MergeData": {"PerMessage": rows, "Global": [{"Field": "Motto", "Value": "be kind"}]},
    }
    fields.update(overrides)
    return message(**fields)


# --- a webhook / inbound receiver on loopback -------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Receiver:
    """Records every POST; answers from a script of (status, body) per path, then `default`."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)
    default: tuple[int, str] = (200, "")
    delay: float = 0.0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *responses: tuple[int, str]) -> None:
        self.script.setdefault(path, deque()).extend(responses)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            queue = receiver.script.get(self.path)
            status, text = queue.popleft() if queue else receiver.default
            if receiver.delay:
                threading.Event().wait(receiver.delay)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 in a thread; test files wrap it in a `receiver` fixture."""
    box = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
