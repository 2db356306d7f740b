"""Driver for tests/test_cli.py's bad-input corpus: runs `demoforge-generate` in-process once per
argument list (read as JSON from argv[1]) and prints one JSON result line per run."""

from __future__ import annotations

import contextlib
import io
import json
import sys

from sim.cli.generate import generate_main

for args in json.loads(sys.argv[1]):
    sys.argv = ["demoforge-generate", *args]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            generate_main()
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException as e:  # noqa: BLE001  (reported, the test fails on it)
            code, err = -1, io.StringIO(f"uncaught {type(e).__name__}: {e}")
    print(json.dumps({"args": args, "code": code, "stderr": err.getvalue()}), flush=True)
