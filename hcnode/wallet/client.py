"""A blocking JSON-RPC client for the node's Unix socket (wallets, the demo, tests, benchmarks).

Owns: one connection, request ids, line framing, turning error objects into
``RpcCallError``. Must not know what methods mean.
"""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any

__all__ = ["RpcClient", "RpcCallError"]


class RpcCallError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data

    @property
    def reason(self) -> str | None:
        """The chain's rejection code (``bad_signature``, ``mempool_full`` ...) when there is one."""
        return self.data.get("code") if isinstance(self.data, dict) else None


class RpcClient:
    def __init__(self, path: str | Path, timeout: float = 90.0) -> None:
        # longer than the node's longest tx.wait (60 s), so a full wait never times out here first
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError as exc:
            self.sock.close()
            raise ConnectionError(f"cannot reach the node at {self.path}: {exc.strerror or exc}") from None
        self.reader = self.sock.makefile("rb")
        self.ids = itertools.count(1)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> Any:
        request_id = next(self.ids)
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self.sock.sendall(line.encode() + b"\n")
        raw = self.reader.readline()
        if not raw:
            raise ConnectionError(f"the node closed the connection during {method}")
        response = json.loads(raw)
        if "error" in response:
            error = response["error"]
            raise RpcCallError(error["code"], error["message"], error.get("data"))
        return response["result"]
