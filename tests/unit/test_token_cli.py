"""`jobd token create` prints a token once and config lines that make it work."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from click.testing import CliRunner

from provena_jobd.cli import main
from provena_jobd.config import load
from provena_jobd.identity import hash_token


def test_token_create_prints_a_working_config_entry(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["token", "create", "--user", "svc", "--roles", "job-service-read, job-service-write"]
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"^token: (\S+)$", result.output, re.MULTILINE)
    assert token is not None and token.group(1).startswith("jobd_")
    snippet = result.output[result.output.index("\n\n") :]
    assert token.group(1) not in snippet
    # Pasted alone, the snippet turns token auth on: the tokens alone were ignored in mode
    # "none" (the default), which let anyone act with every role.
    config = tmp_path / "jobd.toml"
    config.write_text(snippet)
    auth = load(config).auth
    assert auth.mode == "token"
    assert [msgspec.to_builtins(entry) for entry in auth.tokens] == [
        {
            "sha256": hash_token(token.group(1)),
            "user": "svc",
            "roles": ["job-service-read", "job-service-write"],
        }
    ]
    assert 'if it already has an [auth] table, set mode = "token" in it' in result.output


def test_a_config_already_in_token_mode_gets_only_the_entry_to_add(tmp_path: Path) -> None:
    config = tmp_path / "jobd.toml"
    first = CliRunner().invoke(main, ["token", "create", "--user", "one"])
    config.write_text(first.output[first.output.index("\n\n") :])
    second = CliRunner().invoke(main, ["token", "create", "--user", "two", "--config", str(config)])
    assert second.exit_code == 0, second.output
    assert "[auth]\n" not in second.output  # a second [auth] table would not parse
    with config.open("a") as handle:
        handle.write(second.output[second.output.index("\n\n") :])
    assert [entry.user for entry in load(config).auth.tokens] == ["one", "two"]


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


def test_a_bad_jobd_config_is_named_and_an_empty_one_refused(tmp_path: Path) -> None:
    create = ["token", "create", "--user", "svc"]
    folder = CliRunner().invoke(main, create, env={"JOBD_CONFIG": str(tmp_path)})
    assert folder.exit_code == 2
    assert f"Invalid value for JOBD_CONFIG: File '{tmp_path}' is a directory." in folder.output
    # Set but empty, it used to mean no config, the reference's role names.
    empty = CliRunner().invoke(main, create, env={"JOBD_CONFIG": ""})
    assert empty.exit_code == 2 and "token:" not in empty.output
    assert "JOBD_CONFIG is set but empty: set it to a value for --config" in empty.output


def test_the_worker_role_docs_workers_md_names_is_accepted() -> None:
    # docs/workers.md: a token for an outside worker.
    result = CliRunner().invoke(
        main, ["token", "create", "--user", "registry-worker", "--roles", "job-service-worker"]
    )
    assert result.exit_code == 0, result.output
    assert 'roles = ["job-service-worker"]' in result.output
