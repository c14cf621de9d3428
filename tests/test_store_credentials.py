"""The database password in a store URL (``postgresql://user:PASSWORD@host/db``) is the credential to every
worker's shared store: its sealed session keys, its grants, its revocation marks and its outbox. Messages name
the store by its URL; the password must never be in them, whatever was wrong with the URL, in the SDK
(:func:`~keyscope.store.open_store`, :class:`~keyscope.store.SqlStore`) and on the command line.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keyscope.cli import main
from keyscope.errors import KeyscopeError
from keyscope.store import SqlStore, open_store
from support.postgres import postgres_fixture

postgres_server = postgres_fixture(scope="module")

PASSWORD = "Sup3r-S3cret-Db-Pw"

# URLs an operator can get wrong in a hurry: a typo in the scheme, an unsupported database, a port out of range
# or not a number, an unclosed IPv6 bracket; each one carries the password
MISTAKES = [
    pytest.param(f"postgresq://keyscope:{PASSWORD}@db.internal:5432/keyscope", id="typo in the scheme"),
    pytest.param(f"mysql://keyscope:{PASSWORD}@db.internal:3306/keyscope", id="another database"),
    pytest.param(f"postgresql://keyscope:{PASSWORD}@127.0.0.1:99999/keyscope", id="port out of range"),
    pytest.param(f"postgresql://keyscope:{PASSWORD}@127.0.0.1:54x2/keyscope", id="port not a number"),
    pytest.param(f"postgresql://keyscope:{PASSWORD}@[::1/keyscope", id="unclosed bracket"),
    pytest.param(f"postgres://keyscope:{PASSWORD}@127.0.0.1:0/keyscope", id="port 0"),
]


def _every_text(error: BaseException) -> str:
    """Everything an error carries that a log or a traceback shows: its message, args, repr and causes."""
    texts = [str(error), repr(error), *(repr(arg) for arg in error.args)]
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts.append(_every_text(linked))
    return "\n".join(texts)


@pytest.mark.parametrize("url", MISTAKES)
def test_a_mistaken_store_url_is_refused_without_its_password(url: str) -> None:
    for opening in (lambda: open_store(url, kek=bytes(32)), lambda: SqlStore(url, retry_seconds=0)):
        with pytest.raises(KeyscopeError) as info:
            opening()
        shown = _every_text(info.value)
        assert PASSWORD not in shown, shown
        assert "keyscope:***@" in shown  # still says which URL, and that it had a password


@pytest.mark.parametrize("url", MISTAKES)
def test_the_command_line_refuses_a_mistaken_store_url_without_its_password(url: str) -> None:
    for args, env in ((["sessions", "--store", url], {}), (["sessions"], {"KEYSCOPE_STORE": url})):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code != 0
        assert PASSWORD not in result.output, result.output
        assert "error:" in result.output and "***" in result.output


def test_a_live_postgresql_store_names_itself_without_its_password(postgres_server) -> None:
    """The real server: a role with a password, the store opened with it; its repr and an error about a
    database that does not exist show the URL without the password."""
    admin = postgres_server.create_database()
    import psycopg

    with psycopg.connect(admin.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE keyscope_pw LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"GRANT ALL ON DATABASE {admin.rsplit('/', 1)[1]} TO keyscope_pw")
        conn.execute("GRANT ALL ON SCHEMA public TO keyscope_pw")
    host_port_db = admin.split("@", 1)[1]
    url = f"postgresql://keyscope_pw:{PASSWORD}@{host_port_db}"
    with open_store(url, kek=bytes(32)) as store:
        assert PASSWORD not in repr(store) and PASSWORD not in store.url
    missing = url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(KeyscopeError) as info:
        SqlStore(missing, retry_seconds=0)
    assert PASSWORD not in _every_text(info.value)
    result = CliRunner().invoke(main, ["sessions", "--store", missing])
    assert result.exit_code != 0 and PASSWORD not in result.output, result.output


def test_a_role_that_may_not_create_keyscope_s_tables_is_told_to_use_a_database_it_owns(
    postgres_server,
) -> None:
    """docs/scaling.md creates a database owned by the workers' role; a reader who skips that and points the store at
    a database the role does not own (PostgreSQL 15's ``public`` schema takes no tables of other roles) was told
    "permission denied for schema public; check the database and its keyscope tables"."""
    admin = postgres_server.create_database()
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE keyscope_guest LOGIN PASSWORD '{PASSWORD}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = f"postgresql://keyscope_guest:{PASSWORD}@{admin.split('@', 1)[1]}"
    with pytest.raises(KeyscopeError) as info:
        open_store(url, kek=bytes(32))
    said = str(info.value)
    assert "may not create or use keyscope's tables in this database" in said, said
    assert "CREATE DATABASE keyscope OWNER" in said and PASSWORD not in _every_text(info.value), said


AT_PASSWORD = "Sup3r@S3cret/Db@Pw"  # an '@' and a '/' as typed, not percent-encoded


def test_a_password_holding_an_at_sign_opens_the_store_and_is_never_shown(postgres_server) -> None:
    """A password with an unescaped ``@`` is read whole (up to the last ``@`` before the host), as messages
    read it: the store opens with it, and no piece of it is shown. A parser ending it at its first ``@`` took
    the rest for the host (``S3cret/Db@127.0.0.1``), connected nowhere and quoted that piece in its error."""
    admin = postgres_server.create_database()
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE keyscope_at LOGIN PASSWORD '{AT_PASSWORD}'")
        conn.execute(f"GRANT ALL ON DATABASE {admin.rsplit('/', 1)[1]} TO keyscope_at")
        conn.execute("GRANT ALL ON SCHEMA public TO keyscope_at")
    host_port_db = admin.split("@", 1)[1]
    url = f"postgresql://keyscope_at:{AT_PASSWORD}@{host_port_db}"
    with open_store(url, kek=bytes(32)) as store:
        assert store.url == f"postgresql://keyscope_at:***@{host_port_db}", store.url
    pieces = [piece for piece in AT_PASSWORD.replace("/", "@").split("@") if len(piece) >= 2]
    missing = url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(KeyscopeError) as info:
        SqlStore(missing, retry_seconds=0)
    shown = _every_text(info.value)
    assert "no_such_database" in shown and not [piece for piece in pieces if piece in shown], shown
    result = CliRunner().invoke(main, ["sessions", "--store", missing])
    assert result.exit_code != 0 and not [piece for piece in pieces if piece in result.output], result.output


# passwords of the characters a URL's user info may hold as they are (RFC 3986), with a Z, which no message has
_PASSWORDS = st.text(alphabet=st.sampled_from("abcXYZ019-_.~!$&'()*+,;="), min_size=6, max_size=24).filter(
    lambda password: "Z" in password
)


@settings(max_examples=150, deadline=None)
@given(
    password=_PASSWORDS,
    scheme=st.sampled_from(["postgresql", "postgres", "postgresql+psycopg", "postgresq", "pg", "mysql"]),
    port=st.sampled_from(["0", "99999", "70000", "x1", "5432"]),
)
def test_no_mistaken_store_url_shows_its_password(password: str, scheme: str, port: str) -> None:
    """A wrong scheme (any port), or a PostgreSQL scheme with a port that is none: refused at once, never
    connecting, and the password is nowhere in the error."""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg") and port == "5432":
        port = "65536"
    url = f"{scheme}://app:{password}@127.0.0.1:{port}/keyscope"
    with pytest.raises(KeyscopeError) as info:
        open_store(url, kek=bytes(32))
    assert password not in _every_text(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw@db:5432/keyscope", "postgresql://app:***@db:5432/keyscope"),
        ("postgresql://app@db/keyscope", "postgresql://app@db/keyscope"),
        ("postgresql://db/keyscope?user=app", "postgresql://db/keyscope?user=app"),
        ("postgresql://app:p@ss/w0rd@db:1/keyscope", "postgresql://app:***@db:1/keyscope"),
        ("postgresql://:pw@db/keyscope", "postgresql://:***@db/keyscope"),
        ("postgresql://app:S3c#ret@db:5432/keyscope", "postgresql://app:***@db:5432/keyscope"),
        ("postgresql://app:S3c?ret@db:5432/keyscope", "postgresql://app:***@db:5432/keyscope"),
        ("postgresql://app@db/keyscope?password=S3cret", "postgresql://app@db/keyscope?password=***"),
        (
            "postgresql://app@db/keyscope?sslmode=require&PASSWORD=S3cret&application_name=w1",
            "postgresql://app@db/keyscope?sslmode=require&PASSWORD=***&application_name=w1",
        ),
        ("postgresql://app@db/keyscope?options=a@b", "postgresql://app@db/keyscope?options=a@b"),
        # a '/' and a '#' or '?' as typed: no '@' before the path nor before the query
        ("postgresql://app:a/b#c@db/keyscope", "postgresql://app:***@db/keyscope"),
        ("postgresql://app:a?b/c@[::1]:5432/keyscope", "postgresql://app:***@[::1]:5432/keyscope"),
        ("postgresql://app:1234/b#c@d@db/k", "postgresql://app:***@db/k"),
        # read as the store's URL parser reads it: user db, a password, host b
        ("postgresql://db:5432/x?user=a@b", "postgresql://db:***@b"),
        ("postgresql://[::1]:5432/db?options=a@b", "postgresql://[::1]:5432/db?options=a@b"),
        ("sqlite:////var/lib/keyscope/s.db", "sqlite:////var/lib/keyscope/s.db"),
        ("sqlite:////var/x:y/s@1.db", "sqlite:////var/x:y/s@1.db"),
        ("/var/lib/keyscope/store", "/var/lib/keyscope/store"),
    ],
)
def test_a_store_url_is_shown_with_only_its_password_hidden(url: str, shown: str) -> None:
    from keyscope.urls import hide_password

    assert hide_password(url) == shown


@settings(max_examples=300, deadline=None)
@given(
    password=st.text(alphabet=st.sampled_from("aZ9-_.~!$&'()*+,;=:@/?#%"), min_size=1, max_size=16),
    host=st.sampled_from(["db", "db:5432", "[::1]:5432", "h1:5432,h2:5433"]),
)
def test_a_typed_password_of_any_url_characters_is_hidden_and_read_whole(password: str, host: str) -> None:
    """Whatever the password holds as typed (``@``, ``/``, ``?``, ``#``, ``:``), the URL is shown with the host and
    database and without it, and the store's URL parser reads it whole once its ``@`` are escaped. Left out: an
    ``@`` followed later by ``?`` and a name (``x@db?a=1``), which reads as a whole URL with a query (percent-encode
    such a password)."""
    from sqlalchemy.engine import make_url

    from keyscope.urls import escape_password, hide_password

    assume(not re.search(r"@.*\?[A-Za-z_]", password, re.DOTALL))
    url = f"postgresql://app:{password}@{host}/keyscope"
    assert hide_password(url) == f"postgresql://app:***@{host}/keyscope"
    if "%" not in password and "," not in host:
        parsed = make_url(escape_password(url))
        assert (parsed.username, parsed.password, parsed.database) == ("app", password, "keyscope")


@pytest.mark.parametrize(
    ("url", "escaped"),
    [
        ("postgresql://app:p@ss@db:1/keyscope", "postgresql://app:p%40ss@db:1/keyscope"),
        ("postgresql://app:p@ss/w0rd@db/keyscope", "postgresql://app:p%40ss/w0rd@db/keyscope"),
        ("postgresql://app:p%40ss@db/keyscope", "postgresql://app:p%40ss@db/keyscope"),
        ("postgresql://us@er:pw@db/keyscope", "postgresql://us@er:pw@db/keyscope"),
        ("postgresql://app@db/keyscope?options=a@b", "postgresql://app@db/keyscope?options=a@b"),
        ("sqlite:////var/lib/keyscope/s@1.db", "sqlite:////var/lib/keyscope/s@1.db"),
    ],
)
def test_only_the_at_signs_of_a_password_are_escaped(url: str, escaped: str) -> None:
    from keyscope.urls import escape_password

    assert escape_password(url) == escaped


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql://keyscope:{PASSWORD}#1@127.0.0.1:1/keyscope", id="a # in the password"),
        pytest.param(f"postgresql://keyscope:{PASSWORD}?1@127.0.0.1:1/keyscope", id="a ? in the password"),
        pytest.param(
            f"postgresql://keyscope:{PASSWORD}/x#1@127.0.0.1:1/keyscope", id="a / and a # in the password"
        ),
        pytest.param(
            f"postgresql://keyscope@127.0.0.1:1/keyscope?password={PASSWORD}", id="password in the query"
        ),
    ],
)
def test_a_password_the_url_does_not_escape_is_never_shown(url: str, postgres_server) -> None:
    """Passwords with a ``#`` or a ``?`` as typed (the driver reads them whole), or given as libpq's ``password``
    query parameter: when the server cannot be reached, or has no such database, neither the SDK's error nor the
    command line's shows them (the command line put the URL as given in front of the store's message)."""
    with pytest.raises(KeyscopeError) as info:
        SqlStore(url, retry_seconds=0)
    shown = _every_text(info.value)
    assert PASSWORD not in shown and "127.0.0.1:1" in shown, shown
    # the live server (it lets any password in) has no such database: refused at once, naming it
    live = url.replace("127.0.0.1:1/keyscope", f"127.0.0.1:{postgres_server.port}/no_such_db")
    result = CliRunner().invoke(main, ["sessions", "--store", live])
    assert (
        result.exit_code != 0 and "error:" in result.output and '"no_such_db" does not exist' in result.output
    )
    assert PASSWORD not in result.output, result.output


@pytest.mark.parametrize(
    ("change", "named", "advice"),
    [
        pytest.param(
            lambda url: url.rsplit("/", 1)[0] + "/no_such_database",
            '"no_such_database" does not exist',
            "create the database first",
            id="no such database",
        ),
        pytest.param(
            lambda url: url.replace("://keyscope@", "://no_such_role@", 1),
            '"no_such_role" does not exist',
            "check the user name in the store URL",
            id="no such role",
        ),
    ],
)
def test_a_login_the_server_refuses_fails_at_once_saying_what_to_fix(
    postgres_server, change, named: str, advice: str
) -> None:
    """A store URL the server refuses for good (a database or a role it does not have) is not retried for the
    store's ``retry_seconds`` as if the server were restarting, nor reported as "check the server is running":
    the worker fails at once, with the server's reason and what to fix in the URL."""
    import time

    url = change(postgres_server.create_database())
    started = time.monotonic()
    with pytest.raises(KeyscopeError) as info:
        SqlStore(url, retry_seconds=30)
    assert time.monotonic() - started < 10, "a refused login was retried as if the server were down"
    message = str(info.value)
    assert named in message and advice in message, message
    assert "check the server is running" not in message
    result = CliRunner().invoke(main, ["sessions", "--store", url])
    assert result.exit_code != 0 and named in result.output and advice in result.output, result.output
