"""Endpoint URLs as people see them: API keys masked.

Hosted nodes, bundlers and paymaster services take their API key in the URL: as a query parameter
(``https://api.pimlico.io/v2/sepolia/rpc?apikey=KEY``), as a path segment (``https://…/v2/KEY``), or as user
info (``https://user:KEY@host``). keyscope sends requests to the URL exactly as given, and shows it (in error
messages, their ``url`` attribute, logs and reprs) only through :func:`mask_url`, which keeps what tells
endpoints apart (scheme, host, port, the path's names, the query's parameter names) and hides the rest.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["MASK", "escape_password", "hide_password", "mask_url", "masked_text", "without_password"]

MASK = "***"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _secret_segment(segment: str) -> bool:
    """Whether a path segment looks like a key: a UUID, 32 characters or more, or 16 or more with a digit or a
    capital (names such as ``arbitrum-sepolia`` and chain ids such as ``11155111`` stay)."""
    if _UUID.match(segment) or len(segment) >= 32:
        return True
    return len(segment) >= 16 and any(c.isdigit() or c.isupper() for c in segment)


_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,}")


def _mask_loose(text: str) -> str:
    """Text meant as a URL that is not one (``localhost:4337``): key-like words and any query masked, the rest
    kept so that the mistake can still be seen."""
    head, _, query = text.partition("?")
    head = "@".join([MASK, head.rsplit("@", 1)[1]]) if "@" in head else head
    head = _TOKEN.sub(lambda found: MASK if _secret_segment(found.group()) else found.group(), head)
    return head + (f"?{MASK}" if query else "")


def mask_url(url: str) -> str:
    """``url`` with anything that may be a credential replaced by ``***``: user info, every query value, the
    fragment, and path segments that look like keys. In text that is not a URL, key-like words and the query
    are masked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _mask_loose(url)
    if not parts.scheme or not parts.hostname:
        return _mask_loose(url)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = (f"{MASK}@" if "@" in parts.netloc else "") + host + (f":{port}" if port is not None else "")
    path = "/".join(MASK if _secret_segment(segment) else segment for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}={MASK}" if value else name for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    if parts.query and not query:
        query = MASK
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` that :func:`mask_url` hides, longest first."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [value for _, value in parse_qsl(parts.query, keep_blank_values=True) if value]
    found += [segment for segment in parts.path.split("/") if _secret_segment(segment)]
    if "@" in parts.netloc:
        found.append(parts.netloc.rsplit("@", 1)[0])
    if parts.fragment:
        found.append(parts.fragment)
    return sorted({secret for secret in found if len(secret) >= 4}, key=len, reverse=True)


def masked_text(text: str, url: str) -> str:
    """``text`` (an underlying library's message, say) with ``url``, and each secret part of it on its own,
    masked."""
    if not url:
        return text
    text = text.replace(url, mask_url(url))
    for secret in _secrets(url):
        text = text.replace(secret, MASK)
    return text


# what follows the user info's ``@`` when the ``@`` is the user info's end: a host list (or none, a socket
# directory being given in the query), then a path, or a query whose first parameter is named
_AFTER_USER_INFO = re.compile(
    r"([A-Za-z0-9.\-_\[\]:,%]+(/[^?@]*)?|/[^?@]*)(\?[A-Za-z_][\w.\-]*(=.*)?)?|[A-Za-z0-9.\-_\[\]:,%]*",
    re.DOTALL,
)


def _last_user_info_at(rest: str) -> int:
    """Where the user info of ``rest`` (a URL after ``scheme://``) ends, -1 for none. A user name holds none of
    ``/?#[]`` (``/var/x:y/s@1.db`` is a path, ``[::1]:5432`` a host). The end is the last ``@`` before the query
    that a host, path or named query follows (``app:p@ss/w#rd@db/x``; a ``#`` is no delimiter in a database URL:
    its parsers read it as part of the password or the database); else, a ``?`` being in the password as typed,
    the last before the path (``app:S3c?ret@db/x``); else the last ``@`` of all (``app:a/b?c@db/x``)."""
    user, colon, _ = rest.partition(":")
    if not colon or any(char in user for char in "/?#[]"):
        return -1
    for head in (rest.split("?", 1)[0], rest.split("/", 1)[0]):
        at = head.rfind("@")
        if at >= 0 and _AFTER_USER_INFO.fullmatch(rest[at + 1 :]):
            return at
    return rest.rfind("@")


def _split_password(url: str) -> tuple[str, str] | None:
    """``(url before the password, password)`` of ``scheme://user:PASSWORD@host…``, else None. A password holding
    an ``@``, a ``/``, a ``?`` or a ``#`` (which a URL should carry percent-encoded) is taken whole, as
    :func:`_last_user_info_at` finds its end."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return None
    at = _last_user_info_at(rest)
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    return (f"{scheme}://{user}:", password) if colon else None


# a password given as a query parameter (``postgresql://app@db/keyscope?password=…``), which libpq reads too
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def hide_password(url: str) -> str:
    """``url`` with the password of its user info (``scheme://user:PASSWORD@host…``), and the value of a
    ``password`` query parameter, replaced by ``***``, the rest as given: how messages name a database URL (its
    user, host, port and database tell stores apart; the password opens one). A password holding an ``@``, a
    ``/``, a ``?`` or a ``#`` (which a URL should carry percent-encoded, and the database's driver reads as typed)
    is hidden whole, with whatever a parser would read in it."""
    split = _split_password(url)
    if split is not None:
        before, password = split
        url = f"{before}{MASK}{url[len(before) + len(password) :]}"
    return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", url)


def escape_password(url: str) -> str:
    """``url`` with each ``@`` of its password percent-encoded (``%40``), the rest as given: the password read as
    :func:`hide_password` reads it (up to the last ``@`` before the query), which URL parsers that end it at its
    first ``@`` would otherwise cut, taking the rest of it for the host."""
    split = _split_password(url)
    if split is None or "@" not in split[1]:
        return url
    before, password = split
    return f"{before}{password.replace('@', '%40')}{url[len(before) + len(password) :]}"


def without_password(text: str, url: str) -> str:
    """``text`` (a parser's message about ``url``, say) with ``url`` shown by :func:`hide_password` and its password
    masked wherever else it appears."""
    text = text.replace(url, hide_password(url))
    split = _split_password(url)
    if split is not None and split[1]:
        text = text.replace(split[1], MASK)
    for found in _QUERY_PASSWORD.finditer(url):
        value = url[found.end(1) : found.end()]
        if value:
            text = text.replace(value, MASK)
    return text
