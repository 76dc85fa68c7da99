"""The trio shell: LevelDB store, mempool, block production, Unix-socket RPC. All I/O lives here."""
