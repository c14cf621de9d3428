"""``python -m keyscope.scale.runner SPEC.json`` with a spec whose fields are wrong: each is refused before the store
is opened or a service asked, with one ``error:`` line naming the field (and the intent) and what it takes, never
a Python traceback (``KeyError: 'to'``, ``TypeError: SessionWorker.__init__() got an unexpected keyword argument``)
nor a message that names no field (``invalid literal for int() with base 10``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TARGET = "0x" + "11" * 20
SESSION = "0x" + "22" * 32
GOOD_INTENT = {"intent_id": "order-1", "session_id": SESSION, "to": TARGET, "value": 0, "data": "0x"}


def _spec(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "store": f"sqlite:///{tmp_path / 'never-created.db'}",
        "node": "http://127.0.0.1:9",  # nothing listens: a spec refused must not get as far as asking it
        "bundler": "http://127.0.0.1:9",
        "module": "0x" + "33" * 20,
        "intents": [GOOD_INTENT],
    }
    spec.update(changes)
    return spec


CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "intent without to": ({"intents": [{"intent_id": "a", "session_id": SESSION}]}, ("intents[0]", "'to'")),
    "intent without id": (
        {"intents": [{"session_id": SESSION, "to": TARGET}]},
        ("intents[0]", "'intent_id'"),
    ),
    "intent not an object": ({"intents": ["order-1"]}, ("intents[0]", "object")),
    "intents not a list": ({"intents": {"order-1": GOOD_INTENT}}, ("'intents'", "list")),
    "value in words": ({"intents": [{**GOOD_INTENT, "value": "1 ether"}]}, ("intents[0]", "'value'", "wei")),
    "negative value": ({"intents": [{**GOOD_INTENT, "value": -1}]}, ("intents[0]", "'value'")),
    "data not hex": ({"intents": [{**GOOD_INTENT, "data": "mint"}]}, ("intents[0]", "'data'")),
    "worker option unknown": ({"worker": {"lease_ttll": 30}}, ("'worker'", "'lease_ttll'", "lease_ttl")),
    "worker not an object": ({"worker": [30]}, ("'worker'", "object")),
    "concurrency in words": ({"concurrency": "eight"}, ("'concurrency'", "whole number")),
    "concurrency zero": ({"concurrency": 0}, ("'concurrency'",)),
    # a digit to str.isdigit, no number to int(): refused as the others, not a ValueError's traceback
    "concurrency a superscript digit": ({"concurrency": "\u00b2"}, ("'concurrency'", "whole number")),
    "timeout in words": ({"timeout": "soon"}, ("'timeout'", "seconds")),
    "recover_first a string": ({"recover_first": "no"}, ("'recover_first'", "true or false")),
    "store not a string": ({"store": 5}, ("'store'", "URL")),
    "module not a string": ({"module": ["0x"]}, ("'module'",)),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_spec_field_that_is_wrong_is_named_without_a_traceback(case: str, tmp_path: Path) -> None:
    changes, said = CASES[case]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_spec(tmp_path, **changes)))
    env = {**os.environ, "KEYSCOPE_STORE_PASSPHRASE": "a long passphrase"}
    try:  # a process, as it is run; one that gets as far as the unreachable services is stopped
        ran = subprocess.run(
            [sys.executable, "-m", "keyscope.scale.runner", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the spec was not refused; the runner went on to the store and the services")
    assert ran.returncode == 1, ran
    err = ran.stderr
    assert err.startswith("error: the spec's ") and "Traceback" not in err, err
    for words in said:
        assert words in err, (words, err)
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "never-created.db").exists()  # refused before the store was opened
