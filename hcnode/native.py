"""The optional native build: the pure-core modules mypyc compiles, and what this process runs.

``HCNODE_MYPYC=1 pip install -e .`` compiles ``COMPILED`` (``setup.py``) into extension modules
beside their sources, and Python then imports the extension instead of the ``.py``. The code is
the same and CI runs the whole test suite on both builds; compiled, a node applies blocks about
a fifth faster (``benchmarks/billing.py`` prints which build it measured). A plain
``pip install -e .`` builds nothing and runs the sources.

Once built, an extension shadows its source: an edited ``.py`` would silently not run. The
package refuses to import in that state (``stale_builds``), naming the file and the fix.

This module must import nothing outside the standard library: ``setup.py`` reads ``COMPILED``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from pathlib import Path

__all__ = ["COMPILED", "compiled_modules", "stale_builds", "REBUILD"]

# The deterministic cores on the path of every applied transaction, and the two node modules every
# transaction passes through (the mempool, and the store's reads and commits). Modules that interpreted
# code subclasses (chain.errors) or patches in tests stay interpreted; so does the rest of the node.
COMPILED = (
    "hcnode/codec.py",
    "hcnode/chain/app.py",
    "hcnode/chain/execute.py",
    "hcnode/chain/merkle.py",
    "hcnode/chain/schema.py",
    "hcnode/chain/state.py",
    "hcnode/chain/tx.py",
    "hcnode/apps/dates.py",
    "hcnode/apps/registry.py",
    "hcnode/apps/billing.py",
    "hcnode/node/mempool.py",
    "hcnode/node/store.py",
)

REBUILD = "rebuild with `HCNODE_MYPYC=1 pip install -e .`, or delete the .so files to run the sources"

_ROOT = Path(__file__).resolve().parent.parent


def _extension(source: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.exists():
            return candidate
    return None


def stale_builds(root: Path = _ROOT) -> list[str]:
    """Compiled modules whose source changed after they were built (they would run the old code)."""
    stale = []
    for name in COMPILED:
        source = root / name
        extension = _extension(source)
        if extension is not None and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(f"{name} is newer than {extension.name}")
    return stale


def _module_names() -> list[str]:
    return [name.removesuffix(".py").replace("/", ".") for name in COMPILED]


def compiled_modules() -> list[str]:
    """The COMPILED modules this process imported from an extension (empty: it runs the sources)."""
    return [name for name in _module_names()
            if (module := sys.modules.get(name)) is not None
            and not str(getattr(module, "__file__", "")).endswith(".py")]


def describe() -> str:
    """One line for benchmarks and logs: which build runs here (it imports every COMPILED module)."""
    for name in _module_names():
        importlib.import_module(name)
    compiled = compiled_modules()
    if not compiled:
        return "pure Python (HCNODE_MYPYC=1 pip install -e . compiles the cores)"
    return f"mypyc-compiled cores ({len(compiled)} of {len(COMPILED)} modules)"
