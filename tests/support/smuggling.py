"""``execute`` callData that carries a second call where the session module does not judge it: after
executionCalldata (outside its length), or after the last call of a batch whose count leaves it out. Every
encoding here is canonical up to its last judged call; an account that read the rest would run the second. The
module refuses both kinds (``MalformedExecution``): an account reading a single call's data to its callData's end
would hand the first to the target, and a canonical batch ends with its last call's padded data."""

from __future__ import annotations

from keyscope.execution import EXECUTE_SELECTOR, Call

__all__ = ["smuggling_encodings"]


def _words(*values: int) -> bytes:
    return b"".join(v.to_bytes(32, "big") for v in values)


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 32)


def _element(call: Call) -> bytes:
    """One canonical ``Execution`` of a batch: target, value, data offset 0x60, data length, padded data."""
    return _words(int(call.target, 16), call.value, 0x60, len(call.data)) + _padded(call.data)


def _execute(call_type: int, exec_type: int, execution: bytes, tail: bytes = b"") -> bytes:
    """``execute(mode, execution)`` with ``tail`` after the padded execution bytes, outside their length."""
    mode = bytes([call_type, exec_type]) + bytes(30)
    return EXECUTE_SELECTOR + mode + _words(0x40, len(execution)) + _padded(execution) + tail


def smuggling_encodings(allowed: Call, smuggled: Call) -> list[bytes]:
    """callData judged as ``allowed`` alone, with ``smuggled`` laid out as a call after it, for default and try
    execution: single mode with ``smuggled``'s execution after executionCalldata; a batch of count 1 followed by
    ``smuggled``'s element inside executionCalldata; the same with another copy after executionCalldata."""
    single = bytes.fromhex(allowed.target[2:]) + _words(allowed.value) + allowed.data
    tail = bytes.fromhex(smuggled.target[2:]) + _words(smuggled.value) + smuggled.data
    one_of_two = _words(0x20, 1, 32) + _element(allowed) + _element(smuggled)
    encodings = []
    for exec_type in (0, 1):
        encodings.append(_execute(0, exec_type, single, tail))
        encodings.append(_execute(1, exec_type, one_of_two))
        encodings.append(_execute(1, exec_type, one_of_two, _element(smuggled)))
    return encodings
