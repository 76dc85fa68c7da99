"""The chain layer's one error family.

``Rejected`` carries a stable machine code (``bad_signature``, ``missing_role``,
``bad_nonce`` ...) and a message for people; it becomes a rejected receipt or a
JSON-RPC error at the boundary. ``ChainError`` is for faults that stop the node
applying blocks (a state root that differs from the block's).
"""

from __future__ import annotations

__all__ = ["ChainError", "Rejected", "StateRootMismatch"]


class ChainError(Exception):
    """Base of the chain layer's errors."""


class Rejected(ChainError):
    """A transaction (or request) refused, with a stable ``code`` and a readable message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class StateRootMismatch(ChainError):
    """This node computed a different state root than the block carries: it must stop applying."""
