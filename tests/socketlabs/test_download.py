"""S5: the suppression export is streamed and parsed as CSV row by row, never loaded whole."""

from __future__ import annotations

import io

import pytest
from responses import matchers

import socketlabs
from socketlabs import SocketLabsClient
from tests.socketlabs.conftest import API, SERVER_ID

URL = f"{API}/servers/{SERVER_ID}/suppressions/download"
HEADER = "suppressionLastUpdate,reason,source,emailAddress\r\n"


class CountingRaw(io.RawIOBase):
    """A body that records how much of it the client has read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        size = min(len(buffer), len(self.data) - self.position, 1024)  # at most 1 KiB per read
        buffer[:size] = self.data[self.position : self.position + size]
        self.position += size
        return size


def big_csv(rows: int) -> bytes:
    lines = [HEADER] + [f"2024-05-01T10:00:00Z,Bounce,api,user{i}@example.net\r\n" for i in range(rows)]
    return "".join(lines).encode()


def test_it_reads_the_export_lazily_row_by_row(client: SocketLabsClient, mocked) -> None:
    data = big_csv(20_000)  # about 1 MB
    raw = CountingRaw(data)
    mocked.get(
        URL,
        match=[matchers.query_param_matcher({"sortField": "suppressionLastUpdate", "sortDirection": "dsc"})],
        body=io.BufferedReader(raw, buffer_size=1024),
        content_type="text/csv",
    )

    rows = client.suppressions.download()
    header = next(rows)
    first = next(rows)

    assert header == ["suppressionLastUpdate", "reason", "source", "emailAddress"]
    assert first[3] == "user0@example.net"
    assert raw.position < len(data) // 10  # only the start has been read

    rest = list(rows)
    assert len(rest) == 19_999
    assert rest[-1][3] == "user19999@example.net"
    assert raw.position == len(data)


def test_it_keeps_quoted_newlines_and_drops_the_byte_order_mark(client: SocketLabsClient, mocked) -> None:
    data = (
        "\ufeff" + HEADER + '2024-05-01,CustomerRequest,"a note\r\nover two lines",ann@example.net\r\n\r\n'
    ).encode()
    mocked.get(URL, body=data, content_type="text/csv")

    rows = list(client.suppressions.download())

    assert rows == [
        ["suppressionLastUpdate", "reason", "source", "emailAddress"],
        ["2024-05-01", "CustomerRequest", "a note\r\nover two lines", "ann@example.net"],
    ]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7])
def test_it_does_not_split_lines_at_chunk_boundaries(client: SocketLabsClient, chunk_size: int) -> None:
    from socketlabs.transport import iter_text_lines

    class FakeResponse:
        headers = {"Content-Type": "text/csv; charset=utf-8"}
        encoding = "utf-8"

        def iter_content(self, chunk_size: int):  # type: ignore[no-untyped-def]
            data = "a,é\r\nb,ü\r\nlast".encode()
            for i in range(0, len(data), step):
                yield data[i : i + step]

        def close(self) -> None:
            pass

    step = chunk_size
    assert list(iter_text_lines(FakeResponse())) == ["a,é\r\n", "b,ü\r\n", "last"]  # type: ignore[arg-type]


def test_it_raises_at_once_when_the_export_is_refused(client: SocketLabsClient, mocked) -> None:
    mocked.get(URL, status=403, json={"data": None, "errors": [{"errorType": "Forbidden", "message": "No."}]})

    with pytest.raises(socketlabs.PermissionDeniedError):
        client.suppressions.download()
