"""Minimal client for the foundation: GET /servers/{id}. The client issue grows it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from socketlabs import errors


@dataclass(frozen=True)
class ServerInfo:
    server_id: int
    name: str
    account_id: int | None
    status: str
    extra: dict[str, Any] = field(default_factory=dict)


def _ci(data: dict[str, Any], key: str, default: Any = None) -> Any:
    lowered = key.lower()
    for k, v in data.items():
        if k.lower() == lowered:
            return v
    return default


class SocketLabsClient:
    def __init__(
        self,
        *,
        server_id: int,
        api_url: str,
        api_key: str = "",
        timeout: tuple[float, float] = (3.05, 30.0),
        session: requests.Session | None = None,
    ) -> None:
        self.server_id = int(server_id)
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    def get_server(self) -> ServerInfo:
        url = f"{self.api_url}/servers/{self.server_id}"
        try:
            response = self.session.get(
                url,
                headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.ConnectTimeout as exc:
            raise errors.ConnectError(f"Could not connect to {self.api_url} in time.") from exc
        except requests.ConnectionError as exc:
            raise errors.ConnectError(f"Could not connect to {self.api_url}.") from exc
        except requests.Timeout as exc:
            raise errors.TimeoutError(f"{self.api_url} did not answer in time.") from exc
        if response.status_code == 401:
            raise errors.AuthenticationError("SocketLabs refused the API key.", status=401)
        if response.status_code == 403:
            raise errors.PermissionDeniedError("The API key may not read this server.", status=403)
        if response.status_code == 404:
            raise errors.NotFoundError(f"Server {self.server_id} was not found.", status=404)
        if response.status_code >= 500:
            raise errors.ServerError("SocketLabs had an internal error.", status=response.status_code)
        try:
            data = _ci(response.json(), "data") or {}
        except ValueError as exc:
            raise errors.ProtocolError("SocketLabs answered with something other than JSON.") from exc
        return ServerInfo(
            server_id=int(_ci(data, "serverId", self.server_id)),
            name=str(_ci(data, "name", "")),
            account_id=_ci(data, "accountId"),
            status=str(_ci(data, "status", "")),
            extra=data,
        )
