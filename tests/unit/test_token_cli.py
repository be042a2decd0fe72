"""`jobd token create` prints a token once and config lines that make it work."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from provena_jobd.cli import main
from provena_jobd.config import from_dict
from provena_jobd.identity import hash_token


def test_token_create_prints_a_working_config_entry() -> None:
    result = CliRunner().invoke(
        main, ["token", "create", "--user", "svc", "--roles", "job-service-read, job-service-write"]
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"^token: (\S+)$", result.output, re.MULTILINE)
    assert token is not None and token.group(1).startswith("jobd_")
    snippet = result.output[result.output.index("[[auth.tokens]]") :]
    entry = tomllib.loads(snippet)["auth"]["tokens"][0]
    assert entry == {
        "sha256": hash_token(token.group(1)),
        "user": "svc",
        "roles": ["job-service-read", "job-service-write"],
    }
    settings = from_dict({"auth": {"mode": "token", "tokens": [entry]}})
    assert settings.auth.tokens[0].user == "svc"
    assert token.group(1) not in snippet


def test_two_tokens_differ() -> None:
    runner = CliRunner()
    outputs = {runner.invoke(main, ["token", "create", "--user", "u"]).output for _ in range(2)}
    assert len(outputs) == 2


def test_an_unknown_role_is_refused_with_a_suggestion() -> None:
    result = CliRunner().invoke(
        main, ["token", "create", "--user", "svc", "--roles", "job-service-read,job-service-raed"]
    )
    assert result.exit_code == 2
    assert "unknown role 'job-service-raed' (did you mean 'job-service-read'?" in result.output
    assert "token:" not in result.output


def test_roles_renamed_in_the_config_are_the_known_ones(tmp_path: Path) -> None:
    config = tmp_path / "jobd.toml"
    config.write_text('[auth.roles]\nread = "jobs-reader"\n')
    ok = ["token", "create", "--user", "svc", "--roles", "jobs-reader", "--config", str(config)]
    assert CliRunner().invoke(main, ok).exit_code == 0
    default_name = ["token", "create", "--user", "svc", "--roles", "job-service-read"]
    refused = CliRunner().invoke(main, [*default_name, "--config", str(config)])
    assert refused.exit_code == 2 and "roles: jobs-reader, job-service-write" in refused.output
