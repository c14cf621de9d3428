"""Reading a text file a person named (a deployments file, a policy, an ABI, a key file), with every failure said
as a :class:`~keyscope.errors.BadInputError`: which file, what is wrong with it (bytes that are not UTF-8 shown
as hex, with their offset), and what to give instead."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import PRIVATE_KEY_NOT_SHOWN, BadInputError, has_private_key_form

__all__ = ["read_text_file"]

_BOM = b"\xef\xbb\xbf"


def read_text_file(
    path: str | os.PathLike[str], what: str, expected: str = "a UTF-8 text file", *, secret: bool = False
) -> str:
    """The text of ``path``, decoded as UTF-8 (a leading byte-order mark dropped).

    ``what`` names the file in a message (``"deployments file"``), ``expected`` what it should hold. A missing
    file, a folder, an unreadable file and bytes that are not UTF-8 (a binary file, a keystore, a file saved in
    another encoding) raise :class:`BadInputError` saying so; the message shows the offending bytes as hex, unless
    the file is ``secret`` (a key file: its bytes may be the key itself), when it gives only their offset.
    """
    if has_private_key_form(
        os.fspath(path)
    ):  # a key pasted for the path: never shown as a missing file's name
        raise BadInputError(f"{what}: {PRIVATE_KEY_NOT_SHOWN} is not a file's path: give {expected}")
    if "\x00" in os.fspath(path):  # no file's name holds a NUL byte: open() says only "embedded null byte"
        raise BadInputError(
            f"{what} {os.fspath(path)!r} holds a NUL byte, which no file's path has: give {expected}"
        )
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{what} {file}: no such file; check the path (give {expected})") from None
    except IsADirectoryError:
        raise BadInputError(f"{what} {file} is a folder, not a file: give {expected}") from None
    except OSError as error:
        raise BadInputError(f"cannot read {what} {file}: {error.strerror or error}") from None
    bom = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        if secret:
            raise BadInputError(
                f"{what} {file} is not UTF-8 text (the first byte that is not is at offset {offset}; the file's "
                f"bytes are not shown, as they may be a key): give {expected}"
            ) from None
        start = max(offset - 4, 0)
        around = raw[start : offset + 8]
        raise BadInputError(
            f"{what} {file} is not UTF-8 text: byte 0x{raw[offset]:02x} at offset {offset} "
            f"(bytes {start} to {start + len(around) - 1}: 0x{around.hex()}); give {expected}"
        ) from None
