"""What every benchmark needs: a real hcnode process on a temporary data dir, and percentiles.

Owns: writing a benchmark node's config (one validator, founding organisations,
block and limit overrides), starting it as a real process, stopping it and
removing its files. Must not know what a benchmark measures.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hcnode import crypto  # noqa: E402
from hcnode.demo import start_node_process  # noqa: E402
from hcnode.node.daemon import write_node_key  # noqa: E402

__all__ = ["BenchNode", "percentile"]


class BenchNode:
    """One validator node; ``orgs`` maps an organisation id to (kind, admin key)."""

    def __init__(self, chain_id: str, *, orgs: dict[str, tuple[str, crypto.PrivateKey]] | None = None,
                 block_txs: int = 5000, interval_ms: int = 20, limits: dict[str, int] | None = None,
                 prefix: str = "hcbench-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))  # short: Unix socket paths are limited
        key = crypto.PrivateKey.generate()
        data = self.dir / "data"
        write_node_key(data / "node.key", key)
        limit_lines = "".join(f"{name} = {value}\n" for name, value in (limits or {}).items())
        org_tables = "".join(
            f'\n[[genesis.orgs]]\nid = "{org}"\nname = "{org.title()}"\nkind = "{kind}"\n'
            f'admins = ["{admin.public.hex()}"]\n' for org, (kind, admin) in (orgs or {}).items())
        config = self.dir / "hcnode.toml"
        config.write_text(f"""chain_id = "{chain_id}"
data_dir = "{data}"
log_level = "warning"
[block]
max_txs = {block_txs}
max_bytes = 8388608
interval_ms = {interval_ms}
[limits]
{limit_lines}[genesis]
time = 2026-01-01T00:00:00Z
admin_threshold = 1
admins = ["{crypto.PrivateKey.generate().public.hex()}"]
validators = ["{key.public.hex()}"]
{org_tables}""")
        self.socket = data / "hcnode.sock"
        try:
            self.proc = start_node_process(config, self.socket)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> BenchNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
