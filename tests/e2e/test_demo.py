"""``make demo`` as a newcomer sees it in an 80-column terminal: every heading whole, no wall of hex."""

from __future__ import annotations

import io
import logging
import re

import pytest
from rich.console import Console

from keyscope.demo import STEPS, run

pytestmark = pytest.mark.e2e


def test_the_demo_reads_well_in_80_columns(caplog: pytest.LogCaptureFixture) -> None:
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    with caplog.at_level(logging.WARNING, logger="keyscope"):
        run(console)
    # nothing but the demo's own lines: no log line of keyscope's (a warning against the demo's own set-up, say)
    assert [record.getMessage() for record in caplog.records if record.name.startswith("keyscope")] == []
    text = console.export_text()
    for number, title in enumerate(STEPS, 1):
        assert f"{number}. {title}" in text, f"heading {number} is cut: {title}"
    headings = [line for line in text.splitlines() if line.startswith("─")]
    assert len(headings) == len(STEPS) and not [line for line in headings if "…" in line]
    longest = max((len(found) for found in re.findall(r"0x[0-9a-fA-F]+", text.replace("\n", ""))), default=0)
    assert longest <= 66, "the demo prints a hex dump longer than one 32-byte word"
    flowing = re.sub(r"\s+", " ", text)  # rich wraps long lines at spaces
    assert "RuleViolated(callIndex=0, permissionIndex=0, ruleIndex=0" in flowing  # the refusal, decoded
    assert "stopped the node and the bundler" in text
    # and what a newcomer does next, once it worked
    assert "next: README.md's “Using the SDK”" in flowing and "python -m keyscope.local" in flowing
    # the end table: each operation's hash whole as shortened, never cut a second time to fit the columns
    table = text.split("UserOperations that landed", 1)[1]
    assert len(re.findall(r"0x[0-9a-f]{6}…[0-9a-f]{6}\b", table)) == 7, table
    assert not re.search(r"0x[0-9a-f]*…[0-9a-f]*…", table), table
    # the revoked session's refusal names its reason once, and what an owner "key" line shows is an address
    # (counted outside hex: a fresh random address, checksummed, may itself hold the letters "AA24")
    words = re.sub(r"0x[0-9a-fA-F]+(?:…[0-9a-fA-F]+)?", "0x…", flowing)
    assert words.count("AA24") == 1 and "no longer accepts the revoked session's signature" in flowing
    assert "owner key" not in text and "(the address of the user's key" in flowing
