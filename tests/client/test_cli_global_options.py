"""`jobd --url URL --token T --json COMMAND`: the client options before the command name."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from provena_jobd.client import JobdClient, ResponseError
from provena_jobd.identity import hash_token
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.test_cli import environment, finish, one_error_line, start


async def test_url_and_json_before_the_command(jobd_server: JobdTestServer) -> None:
    ran = await finish(
        await start("--url", jobd_server.url, "--json", "launch", "EMAIL", "EMAIL_WAKE_UP")
    )
    assert ran.status == 0, ran
    session_id = ran.json()["session_id"]
    job = await jobd_server.client.wait(session_id, timeout_s=10)
    assert job.status == "SUCCEEDED"


async def test_the_option_after_the_command_wins(
    jobd_server: JobdTestServer, unused_tcp_port: int
) -> None:
    nowhere = f"http://127.0.0.1:{unused_tcp_port}"
    after = await finish(await start("--url", nowhere, "pool", "--url", jobd_server.url))
    assert after.status == 0, after
    before = await finish(
        await start("--url", nowhere, "pool", env=environment(JOBD_URL=jobd_server.url))
    )
    assert before.status == 1 and nowhere in before.err  # the command line beats JOBD_URL


async def test_token_before_the_command(jobd_server_factory: JobdServerFactory) -> None:
    secret = "jobd_global-token"
    entry = {"sha256": hash_token(secret), "user": "svc", "roles": ["job-service-read"]}
    server = await jobd_server_factory(auth={"mode": "token", "tokens": [entry]})
    refused = await finish(await start("--url", server.url, "jobs", "list"))
    one_error_line(refused, "Not authenticated (pass --token TOKEN or set JOBD_TOKEN)")
    wrong = await finish(await start("--url", server.url, "--token", "jobd_wrong", "pool"))
    one_error_line(wrong, "Could not validate credentials")  # a token was given: no hint
    ran = await finish(
        await start("--url", server.url, "--token", secret, "--json", "jobs", "list")
    )
    assert ran.status == 0 and ran.json() == []


async def test_a_url_given_to_a_command_that_talks_to_no_server_is_refused(
    tmp_path: Path,
) -> None:
    """`jobd --url X backup PATH` used to copy ./jobd.db whatever server X used."""
    copy = tmp_path / "copy.db"
    refused = await finish(await start("--url", "http://127.0.0.1:8421", "backup", str(copy)))
    assert refused.status == 2, refused
    assert "--url is for the client commands; `jobd backup` talks to no server" in refused.err
    assert not copy.exists()
    # JOBD_URL set for the client commands does not get in the way.
    allowed = await finish(
        await start(
            "backup",
            str(copy),
            "--db",
            str(tmp_path / "none.db"),
            env=environment(JOBD_URL="http://127.0.0.1:8421"),
        )
    )
    assert "--url" not in allowed.err


async def test_a_url_without_a_scheme_is_a_usage_error(jobd_server: JobdTestServer) -> None:
    """`jobd --url notaurl jobs list` used to say `cannot reach jobd at notaurl: notaurl/...`."""
    host_port = jobd_server.url.removeprefix("http://")
    given = await finish(await start("--url", host_port, "jobs", "list"))
    assert (given.status, given.out) == (2, ""), given
    assert f"--url {host_port!r} needs a scheme: http://{host_port} or https://" in given.err
    after = await finish(await start("jobs", "list", "--url", "notaurl"))
    assert after.status == 2 and "--url 'notaurl' needs a scheme" in after.err
    from_env = await finish(await start("pool", env=environment(JOBD_URL=host_port)))
    assert from_env.status == 2 and f"JOBD_URL {host_port!r} needs a scheme" in from_env.err
    for wrong in ("ftp://127.0.0.1:8421", "http://127.0.0.1:port", "http://[::1"):
        other = await finish(await start("pool", "--url", wrong))
        assert other.status == 2, other
        assert f"--url {wrong!r} is not jobd's URL: http://HOST:PORT or https://" in other.err


async def test_an_empty_jobd_url_is_a_usage_error_not_the_default_server(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    """`JOBD_URL=$(cat missing) jobd ...` used to talk to 127.0.0.1:8421, another server."""
    empty = environment(JOBD_URL="")
    refused = await finish(await start("jobs", "list", env=empty))
    assert (refused.status, refused.out) == (2, ""), refused
    assert "JOBD_URL is set but empty: set it to jobd's URL" in refused.err
    given = await finish(await start("--json", "jobs", "list", "--url", jobd_server.url, env=empty))
    assert (given.status, given.json()) == (0, [])  # the command line needs no JOBD_URL
    # Commands that talk to no server do not care.
    local = await finish(
        await start("backup", str(tmp_path / "copy.db"), "--db", str(tmp_path / "none.db"),
                    env=empty)
    )  # fmt: skip
    assert "JOBD_URL" not in local.err


async def test_an_empty_jobd_token_is_a_usage_error_not_no_token(
    jobd_server: JobdTestServer,
) -> None:
    """`JOBD_TOKEN=$(cat missing) jobd ...` used to send no token, as if JOBD_TOKEN were unset."""
    empty = environment(JOBD_TOKEN="")
    refused = await finish(await start("--url", jobd_server.url, "pool", env=empty))
    assert (refused.status, refused.out) == (2, ""), refused
    assert "JOBD_TOKEN is set but empty: set it to your token, or unset it to send none" in (
        refused.err
    )
    given = await finish(await start("pool", "--url", jobd_server.url, "--token", "t", env=empty))
    assert given.status == 0, given  # the command line needs no JOBD_TOKEN


async def test_a_url_with_a_path_says_it_is_the_base_url(jobd_server: JobdTestServer) -> None:
    """`jobd --url http://HOST:PORT/jobs pool` used to say only `jobd: error: Not Found`."""
    url = jobd_server.url
    given = await finish(await start("--url", f"{url}/jobs", "pool"))
    one_error_line(
        given,
        f"{url}/jobs does not look like a jobd server: GET /admin/pool answered 404 Not Found; "
        f"--url is the server's base URL, without a path: {url}",
    )
    from_env = await finish(await start("jobs", "list", env=environment(JOBD_URL=f"{url}/jobs/")))
    assert from_env.status == 1, from_env
    assert f"; JOBD_URL is the server's base URL, without a path: {url}\n" in from_env.err


@pytest.fixture
def not_jobd(tmp_path: Path) -> Iterator[str]:
    """The URL of a server that is not jobd: Python's http.server, serving an empty folder."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()
        thread.join()


async def test_a_server_that_is_not_jobd_is_said_in_one_line(not_jobd: str) -> None:
    """Its HTML error page used to be the whole error; a 200 page was a traceback."""
    answers = {
        ("pool",): "GET /admin/pool answered 404 File not found (text/html, not JSON)",
        ("launch", "EMAIL", "EMAIL_WAKE_UP"): "POST /jobs/admin/launch answered 501 Unsupported",
        ("jobs", "watch", "x" * 36): "GET /jobs/user/events answered 404 File not found",
    }
    for args, answered in answers.items():
        ran = await finish(await start("--url", not_jobd, *args))
        assert ran.status == 1, ran
        assert ran.err.startswith(f"jobd: error: {not_jobd} does not look like a jobd server: ")
        assert answered in ran.err and ran.err.count("\n") == 1, ran.err
        assert "<" not in ran.err and "base URL" not in ran.err  # no page; the URL has no path
    # A page answered 200 (here, the folder's listing for GET /) is not jobd's JSON either.
    async with JobdClient(not_jobd) as client:
        with pytest.raises(ResponseError) as caught:
            await client.health()
    assert caught.value.message == (
        f"{not_jobd} does not look like a jobd server: GET / answered 200 OK (text/html, not JSON)"
    )
    assert caught.value.from_jobd is False
