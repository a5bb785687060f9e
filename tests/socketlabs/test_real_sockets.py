"""The no-double-send rule over real loopback sockets, where urllib3 raises its own exceptions.

A tiny TCP server counts connections and misbehaves on purpose: it closes after reading the
request, or never answers. `responses` cannot show that the client tells "never left" from
"may have arrived" by the real exceptions, so these tests do.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

import socketlabs
from socketlabs import BasicMessage, SocketLabsClient
from tests.socketlabs.conftest import BEARER_KEY, FakeTime

MESSAGE = BasicMessage(from_address="shop@example.com", to=["ann@example.net"], subject="Hi", text_body="Hello")


class MisbehavingServer:
    """Accepts connections on 127.0.0.1; reads each request whole, then drops it or stays silent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        held: list[socket.socket] = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            self._read_request(conn)
            self.requests += 1
            if self.mode == "drop":
                conn.close()
            else:
                held.append(conn)  # silent: keep it open, answer nothing
        for conn in held:
            conn.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def server_factory() -> Iterator[type[MisbehavingServer]]:
    started: list[MisbehavingServer] = []

    class Factory(MisbehavingServer):
        def __init__(self, mode: str) -> None:
            super().__init__(mode)
            started.append(self)

    yield Factory
    for server in started:
        server.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def real_client(fake_time: FakeTime, port: int) -> SocketLabsClient:
    base = f"http://127.0.0.1:{port}"
    return SocketLabsClient(
        server_id=1,
        api_url=f"{base}/sandbox/api/v2",
        api_key=BEARER_KEY,
        inject_url=f"{base}/sandbox/inject/api/v1/email",
        injection_key=BEARER_KEY,
        timeout=(0.5, 0.3),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=lambda: 0.5,
        breakers=socketlabs.BreakerRegistry(),
    )


def test_it_retries_an_injection_when_nothing_listens(fake_time: FakeTime) -> None:
    client = real_client(fake_time, closed_port())

    with pytest.raises(socketlabs.ConnectError) as caught:
        client.inject(MESSAGE)

    assert caught.value.attempts == 5
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_it_sends_an_injection_once_when_the_server_hangs_up_after_reading_it(
    fake_time: FakeTime, server_factory: type[MisbehavingServer]
) -> None:
    server = server_factory("drop")
    client = real_client(fake_time, server.port)

    with pytest.raises(socketlabs.OutcomeUnknownError):
        client.inject(MESSAGE)

    assert server.requests == 1
    assert fake_time.sleeps == []


def test_it_sends_an_injection_once_when_the_answer_never_comes(
    fake_time: FakeTime, server_factory: type[MisbehavingServer]
) -> None:
    server = server_factory("silent")
    client = real_client(fake_time, server.port)

    with pytest.raises(socketlabs.OutcomeUnknownError) as caught:
        client.inject(MESSAGE)

    assert server.requests == 1
    assert isinstance(caught.value.__cause__, socketlabs.TimeoutError)


def test_it_asks_again_when_a_get_is_hung_up_on(fake_time: FakeTime, server_factory: type[MisbehavingServer]) -> None:
    server = server_factory("drop")
    client = real_client(fake_time, server.port)

    with pytest.raises(socketlabs.ConnectError):
        client.get_server()

    assert server.requests == 5
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]
