from hcnode.cli import main

if __name__ == "__main__":  # guarded: verifier worker processes re-import this module
    raise SystemExit(main())
