"""No secret is ever shown: every secret-looking setting is marked, and marked ones are hidden."""

from __future__ import annotations

import json
import logging
import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import pytest
from click.testing import CliRunner

from provena_jobd import config, logs
from provena_jobd.cli import main
from provena_jobd.errors import ConfigError
from provena_jobd.identity import hash_token
from provena_jobd.redaction import (
    REDACTED,
    SECRET,
    redact_cut,
    secret_fields,
    secret_values,
    shown_url,
    url_passwords,
)

# A key whose name says it may hold a secret.
SECRET_LOOKING = re.compile(r"password|passwd|token|secret|key|hash|sha|credential|env", re.I)
# Names that match but hold no secret, and why.
NOT_SECRET = {
    "auth.public_key_file": "the path of a public key",
    "auth.tokens": "a list of tokens, each with its secret sha256 marked",
    "auth.tokens.user": "a token's user name (its sha256 is the secret)",
    "auth.tokens.roles": "a token's role names (its sha256 is the secret)",
}


def schema_keys(kind: type[msgspec.Struct], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """Every key of the settings schema, as written in TOML, and whether it is secret."""
    hints = typing.get_type_hints(kind, include_extras=True)
    secret = secret_fields(kind)
    for name in kind.__struct_fields__:
        key = f"{prefix}{name}"
        yield key, name in secret
        for nested in _structs_in(hints[name]):
            yield from schema_keys(nested, f"{key}.")


def _structs_in(hint: Any) -> Iterator[type[msgspec.Struct]]:
    """The settings structs a field's type holds (directly, in a list or a table)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        yield hint
        return
    for argument in typing.get_args(hint):
        yield from _structs_in(argument)


def test_every_secret_looking_setting_is_marked_secret() -> None:
    keys = dict(schema_keys(config.Settings))
    assert "email.password" in keys and "pool.env" in keys  # the walk reaches nested tables
    unmarked = [
        key
        for key, secret in keys.items()
        if SECRET_LOOKING.search(key.rsplit(".", 1)[-1])
        and not secret
        and key not in NOT_SECRET
        and not any(key.startswith(f"{parent}.") for parent, s in keys.items() if s)
    ]
    assert unmarked == [], (
        f"mark these Secret[...] in config.py or list them in NOT_SECRET: {unmarked}"
    )


SAMPLE = {
    "email": {"smtp_host": "mail.example", "username": "jobd", "password": "hunter2-smtp"},
    "auth": {
        "mode": "token",
        "tokens": [{"sha256": hash_token("jobd_t0ken"), "user": "svc", "roles": []}],
    },
    "pool": {"REGISTRY": {"command": ["worker"], "env": {"JOBD_TOKEN": "jobd_worker-t0ken"}}},
}


def test_admin_config_shows_no_secret_value() -> None:
    settings = config.from_dict(json.loads(json.dumps(SAMPLE)))
    values = secret_values(settings)
    assert {"hunter2-smtp", "jobd_worker-t0ken", hash_token("jobd_t0ken")} <= values
    shown = "\n".join(f"{k}={v}" for k, v in config.flatten(settings))
    assert not [value for value in values if value in shown]
    assert f"email.password={REDACTED}" in shown
    assert f"pool.REGISTRY.env.JOBD_TOKEN={REDACTED}" in shown  # the name shows, not the value
    assert "email.username=jobd" in shown  # what is not secret still shows


def test_a_database_url_s_password_is_hidden_and_role_names_are_not() -> None:
    settings = config.from_dict(
        {
            "storage": {"db": "postgresql://jobd:Sup3rSecretPw@db.example:5432/jobs"},
            "auth": {
                "mode": "token",
                "tokens": [
                    {
                        "sha256": hash_token("jobd_t0ken"),
                        "user": "ops",
                        "roles": ["job-service-read"],
                    }
                ],
            },
        }
    )
    shown = "\n".join(f"{k}={v}" for k, v in config.flatten(settings))
    assert "Sup3rSecretPw" not in shown
    assert "storage.db=postgresql://jobd@db.example:5432/jobs" in shown
    # A token's hash is its secret; its user and roles are not, nor are they elsewhere.
    assert hash_token("jobd_t0ken") not in shown and "'user': 'ops'" in shown
    assert "auth.roles.read=job-service-read" in shown
    record = logging.makeLogRecord({"msg": "connect to postgresql://jobd:Sup3rSecretPw@db"})
    line = logs.formatter("text", secret_values(settings)).format(record)
    assert "Sup3rSecretPw" not in line and REDACTED in line


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("postgresql://u@db/jobs?password=hunter22", "postgresql://u@db/jobs"),
        (
            "postgresql://u@db/jobs?sslmode=require&password=hunter22",
            "postgresql://u@db/jobs?sslmode=require",
        ),
        ("postgresql://u:p%40ss-word@db/jobs", "postgresql://u@db/jobs"),
        # Not percent-encoded as they should be, still hidden.
        ("postgresql://u:pa?ssword1@db:5432/jobs", "postgresql://u@db:5432/jobs"),
        ("postgresql://u:se/cret1@db:5432/jobs", "postgresql://u@db:5432/jobs"),
        ("postgresql://u@db/jobs?password=a%26bcdef", "postgresql://u@db/jobs"),
        # Nothing to hide: as written.
        (
            "postgresql://u@db/jobs?application_name=a@b",
            "postgresql://u@db/jobs?application_name=a@b",
        ),
        ("sqlite:////var/lib/jobd/jobd.db", "sqlite:////var/lib/jobd/jobd.db"),
        ("https://reports.example:8443/files/@team", "https://reports.example:8443/files/@team"),
        ("jobd.db", "jobd.db"),
    ],
)
def test_a_database_url_shows_without_any_password(written: str, shown: str) -> None:
    assert shown_url(written) == shown
    hidden = url_passwords(written)  # a secret, in either spelling, for the log too
    assert all(secret not in shown for secret in hidden)
    assert bool(hidden) is (written != shown)


def test_every_marked_secret_is_redacted_by_the_walk() -> None:
    """A new Secret[...] field is hidden by /admin/config without further code."""

    class Extra(msgspec.Struct, frozen=True):
        api_key: Annotated[str, SECRET] = "k-123456"
        name: str = "visible"

    assert secret_fields(Extra) == {"api_key"}
    assert secret_values(Extra()) == {"k-123456"}


def test_log_lines_redact_secrets_in_text_and_json() -> None:
    settings = config.from_dict(json.loads(json.dumps(SAMPLE)))
    record = logging.makeLogRecord(
        {"msg": "smtp login failed for password %s", "args": ("hunter2-smtp",), "levelno": 40}
    )
    for log_format in ("text", "json"):
        line = logs.formatter(log_format, secret_values(settings)).format(record)
        assert "hunter2-smtp" not in line and REDACTED in line


def test_text_cut_short_hides_the_beginning_of_a_secret_at_its_end() -> None:
    secrets = {"ab-one-secret", "b-two-secret-longer"}
    assert redact_cut("key ab-one-sec", secrets) == f"key {REDACTED}"
    # The longest beginning found wins ("ab", not the "b" that begins the other secret).
    assert redact_cut("key ab", secrets) == f"key {REDACTED}"
    assert redact_cut("ab-one-secret, then b", secrets) == f"{REDACTED}, then {REDACTED}"
    assert redact_cut("nothing secret", secrets) == "nothing secret"


def test_help_shows_no_token_from_the_environment() -> None:
    result = CliRunner().invoke(main, ["jobs", "list", "--help"], env={"JOBD_TOKEN": "jobd_s3cret"})
    assert result.exit_code == 0 and "JOBD_TOKEN" in result.output
    assert "jobd_s3cret" not in result.output


def test_config_errors_do_not_echo_secret_values() -> None:
    bad = {"email": {"password": ["hunter2-smtp"]}}
    try:
        config.from_dict(bad)
    except ConfigError as exc:
        assert "email.password" in exc.message and "hunter2" not in exc.message
    else:  # pragma: no cover
        raise AssertionError("a list is not a password")


def test_json_log_lines_carry_the_action() -> None:
    record = logging.makeLogRecord(
        {"msg": "rescued %d jobs", "args": (2,), "action": "jobs_rescued"}
    )
    entry = json.loads(logs.formatter("json").format(record))
    assert entry["message"] == "rescued 2 jobs" and entry["action"] == "jobs_rescued"
    assert {"time", "level", "logger"} <= set(entry)


def test_admin_config_hides_a_secret_value_written_into_another_setting() -> None:
    # A pool's command written with the mail password in it: the command shows, the
    # password does not (as in GET /admin/pool and the log).
    sample = json.loads(json.dumps(SAMPLE))
    sample["pool"]["REGISTRY"]["command"] = ["worker", "--smtp-password=hunter2-smtp"]
    shown = dict(config.flatten(config.from_dict(sample)))
    assert shown["pool.REGISTRY.command"] == f"['worker', '--smtp-password={REDACTED}']"
