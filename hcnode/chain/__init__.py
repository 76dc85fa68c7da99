"""The pure chain core: transactions, blocks, Merkle proofs, state, genesis, execution.

No I/O, no clock, no randomness: the same blocks give the same state root everywhere.
"""

from hcnode.chain.app import App, AppSet, BlockInfo, Query, TxContext, TxType
from hcnode.chain.block import Block, BlockHeader, decode_block, sign_block
from hcnode.chain.errors import ChainError, Rejected, StateRootMismatch
from hcnode.chain.execute import Execution, Limits, apply_block, execute, read_nonce
from hcnode.chain.genesis import Genesis, GenesisOrg, genesis_block
from hcnode.chain.state import MemoryState, Overlay, StateReader
from hcnode.chain.tx import Tx, build_tx, decode_tx

__all__ = [
    "App", "AppSet", "Block", "BlockHeader", "BlockInfo", "ChainError", "Execution", "Genesis",
    "GenesisOrg", "Limits", "MemoryState", "Overlay", "Query", "Rejected", "StateReader",
    "StateRootMismatch", "Tx", "TxContext", "TxType", "apply_block", "build_tx", "decode_block",
    "decode_tx", "execute", "genesis_block", "read_nonce", "sign_block",
]
