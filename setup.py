"""Everything but the native build is in pyproject.toml; see hcnode/native.py for that."""

import os
import runpy

from setuptools import setup

ext_modules = []
if os.environ.get("HCNODE_MYPYC") == "1":
    from mypyc.build import mypycify

    compiled = runpy.run_path("hcnode/native.py")["COMPILED"]
    # The build environment lacks the runtime dependencies (cbor2, ...): their types count as Any.
    ext_modules = mypycify(["--ignore-missing-imports", "--follow-imports=silent", *compiled], opt_level="3")

setup(ext_modules=ext_modules)
