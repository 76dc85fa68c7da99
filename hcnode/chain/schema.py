"""Payload schemas: a small declarative checker for decoded transaction payloads.

Owns: the shape of values (types, lengths, ranges, allowed words, required and
unknown fields). Must not know what any field means; apps declare that.
A failure raises ``Rejected("bad_payload", ...)`` naming the path of the field,
e.g. ``payload.items[3].code: expected text``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hcnode.chain.errors import Rejected

__all__ = ["Spec", "Text", "Bytes", "Int", "Bool", "ListOf", "Record", "OneOf", "check", "Optional"]


class Spec:
    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _fail(path: str, message: str) -> Rejected:
    return Rejected("bad_payload", f"{path}: {message}")


@dataclass(frozen=True)
class Text(Spec):
    max_len: int = 256
    min_len: int = 1
    pattern: str | None = None
    choices: tuple[str, ...] | None = None

    def check(self, value: Any, path: str) -> None:
        if type(value) is not str:
            raise _fail(path, f"expected text, got {_kind(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise _fail(path, f"length {len(value)} outside {self.min_len}..{self.max_len}")
        if self.choices is not None and value not in self.choices:
            raise _fail(path, f"{value!r} is not one of {', '.join(self.choices)}")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise _fail(path, f"{value!r} does not match {self.pattern}")

    def describe(self) -> str:
        if self.choices:
            return " / ".join(f'"{c}"' for c in self.choices)
        return f"tstr .size ({self.min_len}..{self.max_len})"


@dataclass(frozen=True)
class Bytes(Spec):
    size: int | None = None
    max_len: int = 1024

    def check(self, value: Any, path: str) -> None:
        if type(value) is not bytes:
            raise _fail(path, f"expected bytes, got {_kind(value)}")
        if self.size is not None and len(value) != self.size:
            raise _fail(path, f"expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max_len:
            raise _fail(path, f"{len(value)} bytes, limit {self.max_len}")

    def describe(self) -> str:
        return f"bstr .size {self.size}" if self.size is not None else f"bstr .size (0..{self.max_len})"


@dataclass(frozen=True)
class Int(Spec):
    min: int = 0
    max: int = 2**63 - 1

    def check(self, value: Any, path: str) -> None:
        if type(value) is not int:
            raise _fail(path, f"expected integer, got {_kind(value)}")
        if not self.min <= value <= self.max:
            raise _fail(path, f"{value} outside {self.min}..{self.max}")

    def describe(self) -> str:
        return f"int .within ({self.min}..{self.max})" if self.min < 0 else f"uint .le {self.max}"


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, path: str) -> None:
        if type(value) is not bool:
            raise _fail(path, f"expected true or false, got {_kind(value)}")

    def describe(self) -> str:
        return "bool"


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    max_items: int = 1000
    min_items: int = 0
    unique: bool = False

    def check(self, value: Any, path: str) -> None:
        if type(value) is not list:
            raise _fail(path, f"expected a list, got {_kind(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise _fail(path, f"{len(value)} items, allowed {self.min_items}..{self.max_items}")
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]")
        if self.unique and len({_hashable(v) for v in value}) != len(value):
            raise _fail(path, "items must be unique")

    def describe(self) -> str:
        return f"[{self.min_items}*{self.max_items} {self.item.describe()}]"


@dataclass(frozen=True)
class Optional(Spec):
    """A field that may be absent from a Record (never null)."""

    spec: Spec

    def check(self, value: Any, path: str) -> None:
        self.spec.check(value, path)

    def describe(self) -> str:
        return self.spec.describe()


@dataclass(frozen=True)
class Record(Spec):
    fields: Mapping[str, Spec] = field(default_factory=dict)

    def check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise _fail(path, f"expected a map, got {_kind(value)}")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise _fail(path, f"unknown field {unknown[0]!r} (allowed: {', '.join(sorted(self.fields))})")
        for name, spec in self.fields.items():
            if name not in value:
                if isinstance(spec, Optional):
                    continue
                raise _fail(path, f"missing field {name!r}")
            spec.check(value[name], f"{path}.{name}")

    def describe(self) -> str:
        parts = []
        for name, spec in self.fields.items():
            opt = "? " if isinstance(spec, Optional) else ""
            parts.append(f"{opt}{name}: {spec.describe()}")
        return "{ " + ", ".join(parts) + " }"


@dataclass(frozen=True)
class OneOf(Spec):
    """A map whose ``kind`` field selects one of several records (a tagged union)."""

    variants: Mapping[str, Record] = field(default_factory=dict)

    def check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise _fail(path, f"expected a map, got {_kind(value)}")
        kind = value.get("kind")
        variant = self.variants.get(kind) if type(kind) is str else None
        if variant is None:
            raise _fail(f"{path}.kind", f"expected one of {', '.join(sorted(self.variants))}")
        rest = {k: v for k, v in value.items() if k != "kind"}
        variant.check(rest, path)

    def describe(self) -> str:
        return " / ".join(f'{{ kind: "{k}", {v.describe()[2:]}' for k, v in self.variants.items())


def check(spec: Spec, value: Any, path: str = "payload") -> None:
    spec.check(value, path)


def _kind(value: Any) -> str:
    return {bool: "bool", int: "integer", str: "text", bytes: "bytes", list: "list", dict: "map"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict)) else value
