"""Run code snippets in this interpreter, as a user's program would: read by ``tests/e2e/test_readme.py`` and
run with the Python of a fresh virtual environment that holds keyscope installed from its wheel. It imports
nothing but the standard library and keyscope (so nothing from the checkout).

Reads one JSON object on stdin: ``scope`` (the names the snippets expect, as JSON values) and ``steps``, each
``{"code": ..., "name": ...}`` (run in the shared scope), ``{"fund": EXPRESSION, "rpc": URL, "wei": N}`` (set
the balance of the address the expression gives, on an anvil node) or ``{"report": EXPRESSION, "name": ...}``
(an expression whose value goes into the output). Prints one JSON object: the reports and where keyscope was
imported from.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    request = json.loads(sys.stdin.read())
    scope: dict[str, Any] = dict(request["scope"])
    reports: dict[str, Any] = {}
    for step in request["steps"]:
        if "code" in step:
            exec(compile(step["code"], step["name"], "exec"), scope)
        elif "fund" in step:
            from keyscope.rpc import JsonRpcClient

            address = eval(step["fund"], scope)
            JsonRpcClient(step["rpc"]).request("anvil_setBalance", [address, hex(step["wei"])])
        else:
            reports[step["name"]] = eval(step["report"], scope)
    import keyscope

    print(json.dumps({"reports": reports, "keyscope": keyscope.__file__, "prefix": sys.prefix}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
