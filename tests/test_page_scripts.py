"""The consent page's and the dashboard's scripts parse: a script that does not parse leaves its page blank, with
the owner unable to see a grant's words or to revoke a session, and only a browser would notice. ``node --check``
reads each as the browser will, without running it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[1] / "src" / "keyscope" / "consent" / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))


def test_the_pages_have_scripts() -> None:
    assert {path.name for path in SCRIPTS} >= {"consent.js", "dashboard.js", "keyscope.js"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.name for path in SCRIPTS])
def test_each_page_script_parses(script: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (make setup installs the project's npm tools with it)"
    checked = subprocess.run(
        [node, "--check", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr
