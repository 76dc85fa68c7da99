"""hcnode: a permissioned ledger node for a health-care consortium."""

from hcnode.native import REBUILD as _REBUILD
from hcnode.native import stale_builds as _stale_builds

if _stale := _stale_builds():
    raise ImportError(f"hcnode's native build is out of date: {'; '.join(_stale)}; {_REBUILD}")
