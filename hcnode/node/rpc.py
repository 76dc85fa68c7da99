"""JSON-RPC 2.0 over a Unix socket: one JSON object per line, each way.

Owns: the socket (mode 0600), framing, bounds (line length, connections,
batch sizes), parameter checking and the translation of every lower-layer
error into a JSON-RPC error object. Must not know how a method does its work:
each method calls the node.

Bytes travel as lower-case hex strings, in both directions. Every method and
error code is documented in protocols/rpc.md.

Isolation: each connection is its own task; a malformed, oversized or slow
client gets an error (or is closed) without touching the others, and no
exception from a request escapes its connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from hcnode import codec
from hcnode.chain import Rejected
from hcnode.chain import merkle
from hcnode.chain.app import TX_PROOF_REQUEST
from hcnode.chain.schema import Bytes, Optional, Spec
from hcnode.node.node import Node

__all__ = ["RpcServer", "to_json", "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS"]

log = logging.getLogger("hcnode.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TX_REJECTED = -32000
NOT_FOUND = -32001
BUSY = -32002
QUERY_FAILED = -32003


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def to_json(value: Any) -> Any:
    """Plain data with bytes as hex, ready for ``json.dumps``."""
    kind = type(value)
    if kind is bytes:
        return value.hex()
    if kind is dict:
        return {k: to_json(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_json(v) for v in value]
    return value


class Params:
    """Typed access to a request's params object; every failure names the parameter."""

    def __init__(self, raw: Any, allowed: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object with named parameters")
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise RpcError(INVALID_PARAMS, f"unknown parameter {unknown[0]!r} (allowed: {', '.join(allowed) or 'none'})")
        self.raw = raw

    def has(self, name: str) -> bool:
        return name in self.raw

    def hex(self, name: str, *, size: int | None = None, max_len: int | None = None) -> bytes:
        value = self.raw.get(name)
        data = _from_hex(value, name)
        if size is not None and len(data) != size:
            raise RpcError(INVALID_PARAMS, f"{name}: expected {size} bytes, got {len(data)}")
        if max_len is not None and len(data) > max_len:
            raise RpcError(INVALID_PARAMS, f"{name}: {len(data)} bytes, limit {max_len}")
        return data

    def int(self, name: str, *, default: int | None = None, low: int = 0, high: int = 2**63 - 1) -> int:
        if name not in self.raw:
            if default is None:
                raise RpcError(INVALID_PARAMS, f"{name}: missing")
            return default
        value = self.raw[name]
        if type(value) is not int:
            raise RpcError(INVALID_PARAMS, f"{name}: expected an integer, got {_json_type(value)}")
        if not low <= value <= high:
            raise RpcError(INVALID_PARAMS, f"{name}: {value} outside {low}..{high}")
        return value

    def bool(self, name: str, *, default: bool) -> bool:
        value = self.raw.get(name, default)
        if type(value) is not bool:
            raise RpcError(INVALID_PARAMS, f"{name}: expected true or false, got {_json_type(value)}")
        return value

    def list(self, name: str, max_items: int) -> list[Any]:
        value = self.raw.get(name)
        if not isinstance(value, list):
            raise RpcError(INVALID_PARAMS, f"{name}: expected a list, got {_json_type(value)}")
        if len(value) > max_items:
            raise RpcError(INVALID_PARAMS, f"{name}: {len(value)} items, limit {max_items}")
        return value


def _from_hex(value: Any, name: str) -> bytes:
    """Bytes from lower-case hex, the one form the protocol allows (no case or spacing variants)."""
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"{name}: expected a hex string, got {_json_type(value)}")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        data = None
    # fromhex also takes upper case and spaces; the round trip admits only the canonical form
    if data is None or data.hex() != value:
        raise RpcError(INVALID_PARAMS, f"{name}: not lower-case hex of whole bytes")
    return data


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean"}.get(type(value), "null" if value is None else type(value).__name__)


Method = Callable[[Any], Awaitable[Any]]


class RpcServer:
    def __init__(self, node: Node, path: Path) -> None:
        self.node = node
        self.path = path
        self.limits = node.config.limits
        self.connections = 0
        self.methods: dict[str, Method] = {
            "node.info": self.node_info,
            "tx.submit": self.tx_submit,
            "tx.submit_batch": self.tx_submit_batch,
            "tx.get": self.tx_get,
            "tx.wait": self.tx_wait,
            "tx.proof": self.tx_proof,
            "block.get": self.block_get,
            "block.head": self.block_head,
            "block.wait": self.block_wait,
            "account.nonce": self.account_nonce,
            "rpc.methods": self.rpc_methods,
        }

    # --- transport ----------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # a stale socket from a killed node; the store lock proves we own the dir
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(128)
        listener = trio.SocketListener(sock)
        log.info("RPC listening on %s", self.path)
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    stream = await listener.accept()
                    nursery.start_soon(self._connection, stream)
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    async def _connection(self, stream: trio.SocketStream) -> None:
        async with stream:
            if self.connections >= self.limits.rpc_connections:
                await self._send(stream, _error(None, BUSY, f"too many connections (limit {self.limits.rpc_connections})"))
                return
            self.connections += 1
            try:
                await self._serve_lines(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                self.connections -= 1

    async def _serve_lines(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        max_line = self.limits.rpc_line_bytes
        while True:
            newline = buffer.find(b"\n")
            while newline < 0:
                if len(buffer) > max_line:
                    await self._send(stream, _error(None, INVALID_REQUEST,
                                                    f"request line exceeds {max_line} bytes; closing connection"))
                    return
                chunk = await stream.receive_some(1 << 16)
                if not chunk:
                    if buffer.strip():
                        await self._send(stream, _error(None, PARSE_ERROR, "truncated request: connection closed "
                                                        "before the end of the line"))
                    return
                start = len(buffer)
                buffer += chunk
                found = buffer.find(b"\n", start)
                newline = found
            if newline > max_line:
                await self._send(stream, _error(None, INVALID_REQUEST,
                                                f"request line exceeds {max_line} bytes; closing connection"))
                return
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            if line.strip():
                await self._send(stream, await self.handle_line(line))

    async def _send(self, stream: trio.SocketStream, response: dict[str, Any]) -> None:
        await stream.send_all(json.dumps(response, separators=(",", ":")).encode() + b"\n")

    # --- dispatch -----------------------------------------------------------------------------

    async def handle_line(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError) as exc:
            return _error(None, PARSE_ERROR, f"not valid JSON: {exc}")
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "a request is a JSON object (batches are not supported; "
                                                 "use tx.submit_batch)")
        request_id = request.get("id")
        if not (request_id is None or type(request_id) in (str, int)):
            return _error(None, INVALID_REQUEST, "id must be a string, an integer or null")
        if request.get("jsonrpc") != "2.0":
            return _error(request_id, INVALID_REQUEST, 'missing "jsonrpc": "2.0"')
        method = request.get("method")
        if not isinstance(method, str):
            return _error(request_id, INVALID_REQUEST, "method must be a string")
        try:
            handler = self.methods.get(method)
            if handler is not None:
                result = await handler(request.get("params"))
            elif method in self.node.apps.queries:
                result = self.app_query(method, request.get("params"))
            else:
                raise RpcError(METHOD_NOT_FOUND, f"unknown method {method!r} (see rpc.methods)")
        except RpcError as exc:
            return _error(request_id, exc.code, exc.message, exc.data)
        except Rejected as exc:
            code = BUSY if exc.code == "mempool_full" else TX_REJECTED
            return _error(request_id, code, exc.message, {"code": exc.code})
        except Exception:  # a bug in one method must not take the connection or the node down
            log.exception("RPC method %s failed", method)
            return _error(request_id, INTERNAL_ERROR, f"internal error in {method}; see the node's log")
        return {"jsonrpc": "2.0", "id": request_id, "result": to_json(result)}

    # --- methods --------------------------------------------------------------------------------

    async def rpc_methods(self, raw: Any) -> Any:
        Params(raw, ())
        return sorted([*self.methods, *self.node.apps.queries])

    async def node_info(self, raw: Any) -> Any:
        Params(raw, ())
        return self.node.info()

    async def tx_submit(self, raw: Any) -> Any:
        params = Params(raw, ("tx",))
        tx_hash, status = self.node.submit(params.hex("tx", max_len=self.limits.max_tx_bytes))
        return {"tx": tx_hash, "status": status}

    async def tx_submit_batch(self, raw: Any) -> Any:
        params = Params(raw, ("txs",))
        items = params.list("txs", self.limits.rpc_batch_txs)
        decoded: list[bytes] = []
        for i, item in enumerate(items):
            decoded.append(_from_hex(item, f"txs[{i}]"))
        results = []
        for outcome in await self.node.submit_many(decoded):
            if isinstance(outcome, Rejected):
                results.append({"error": {"code": outcome.code, "message": outcome.message}})
            else:
                results.append({"tx": outcome[0], "status": outcome[1]})
        return {"results": results}

    async def tx_get(self, raw: Any) -> Any:
        params = Params(raw, ("tx",))
        return self.node.tx_status(params.hex("tx", size=32))

    async def tx_wait(self, raw: Any) -> Any:
        params = Params(raw, ("tx", "timeout_ms"))
        tx_hash = params.hex("tx", size=32)
        timeout = params.int("timeout_ms", default=10_000, high=self.limits.tx_wait_max_ms)
        return await self.node.wait_committed(tx_hash, timeout / 1000)

    async def tx_proof(self, raw: Any) -> Any:
        params = Params(raw, ("tx",))
        return self._proof_of(params.hex("tx", size=32))

    def _proof_of(self, tx_hash: bytes) -> dict[str, Any]:
        """A committed transaction with its Merkle audit path and its block's signed header."""
        location = self.node.store.tx_location(tx_hash)
        if location is None:
            raise RpcError(NOT_FOUND, "transaction is not committed (see tx.get)")
        height, index = location
        block = self.node.block_at(height)
        assert block is not None
        receipts = self.node.store.block_receipts(height)
        return {
            "tx": block.txs[index],
            "height": height,
            "index": index,
            "size": len(block.txs),
            "path": merkle.proof(block.txs, index),
            "receipt": codec.decode(receipts[index]),
            "receipt_cbor": receipts[index],
            "receipt_path": merkle.proof(receipts, index),
            "header": _header_json(block),
        }

    async def block_get(self, raw: Any) -> Any:
        params = Params(raw, ("height", "hash", "txs"))
        with_txs = params.bool("txs", default=False)
        if params.has("height") == params.has("hash"):
            raise RpcError(INVALID_PARAMS, "give exactly one of height or hash")
        if params.has("hash"):
            height = self.node.store.height_of(params.hex("hash", size=32))
            if height is None:
                raise RpcError(NOT_FOUND, "no block with this hash")
        else:
            height = params.int("height")
        block = self.node.block_at(height)
        if block is None:
            raise RpcError(NOT_FOUND, f"no block at height {height} (head is {self.node.store.height})")
        out = _header_json(block)
        out["tx_hashes"] = [hashlib.sha256(tx).digest() for tx in block.txs]
        if with_txs:
            out["txs"] = list(block.txs)
        return out

    async def block_head(self, raw: Any) -> Any:
        Params(raw, ())
        block = self.node.block_at(self.node.store.height or 0)
        assert block is not None
        return _header_json(block)

    async def block_wait(self, raw: Any) -> Any:
        params = Params(raw, ("after", "timeout_ms"))
        after = params.int("after")
        timeout = params.int("timeout_ms", default=10_000, high=self.limits.tx_wait_max_ms)
        return {"height": await self.node.wait_height(after, timeout / 1000)}

    async def account_nonce(self, raw: Any) -> Any:
        params = Params(raw, ("key",))
        committed, pending = self.node.next_nonce(params.hex("key", size=33))
        return {"committed": committed, "next": pending}

    def app_query(self, name: str, raw: Any) -> Any:
        query = self.node.apps.queries[name]
        fields = query.params.fields
        params = Params(raw, tuple(fields))
        converted: dict[str, Any] = {}
        for key, value in params.raw.items():
            spec: Spec = fields[key]
            if isinstance(spec, Optional):
                spec = spec.spec
            if isinstance(spec, Bytes):
                converted[key] = params.hex(key)
            else:
                converted[key] = value
        try:
            result = self.node.apps.query(self.node.store, name, converted, self.node.store.height or 0)
        except Rejected as exc:
            code = NOT_FOUND if exc.code == "not_found" else INVALID_PARAMS if exc.code in (
                "bad_payload", "bad_params") else QUERY_FAILED
            raise RpcError(code, exc.message, {"code": exc.code}) from None
        if isinstance(result, dict) and type(result.get(TX_PROOF_REQUEST)) is bytes:
            # A pure query cannot see blocks: it names the transaction, the node adds the proof.
            result["tx_proof"] = self._proof_of(result.pop(TX_PROOF_REQUEST))
        return result


def _header_json(block: Any) -> dict[str, Any]:
    header = block.header
    return {
        "hash": header.hash,
        "chain_id": header.chain_id,
        "height": header.height,
        "prev_hash": header.prev_hash,
        "time_ms": header.time_ms,
        "tx_root": header.tx_root,
        "receipt_root": header.receipt_root,
        "state_root": header.state_root,
        "proposer": header.proposer,
        "signature": block.signature,
        "tx_count": len(block.txs),
    }


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = to_json(data)
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
