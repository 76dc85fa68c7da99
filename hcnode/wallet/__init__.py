"""Client side: the encrypted keystore, the RPC client and the ``hcwallet`` command."""
