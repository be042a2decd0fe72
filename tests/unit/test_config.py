"""Configuration: the sample loads, overrides apply, every mistake names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_jobd import config
from provena_jobd.errors import ConfigError
from provena_jobd.models import JobType

REPO = Path(__file__).resolve().parents[2]


def test_sample_config_loads_and_matches_the_defaults() -> None:
    settings = config.load(REPO / "jobd.toml")
    assert settings.server == config.ServerSettings()
    # Relative paths in a file are relative to the file's folder.
    assert settings.storage == config.StorageSettings(db=str(REPO / "jobd.db"))
    assert settings.queue == config.QueueSettings()
    assert settings.pool == config.PoolSettings()


def test_defaults_follow_the_reference() -> None:
    settings = config.load()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8421)
    assert settings.storage.db == "jobd.db"
    assert settings.storage.durability == "full"
    pool = settings.pool_for(JobType.EMAIL)
    assert (pool.max_workers, pool.cold_start_s, pool.idle_timeout_s) == (3, 0.0, 120.0)


def test_a_job_type_table_overrides_the_pool_defaults_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "jobd.toml"
    path.write_text("[pool]\nmax_workers = 5\n[pool.EMAIL]\ncold_start_s = 35\n")
    settings = config.load(path)
    assert settings.pool_for(JobType.EMAIL).cold_start_s == 35.0
    assert settings.pool_for(JobType.EMAIL).max_workers == 5
    assert settings.pool_for(JobType.REGISTRY).cold_start_s == 0.0
    assert settings.pool_for(JobType.REGISTRY).max_workers == 5


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    path = tmp_path / "jobd.toml"
    path.write_text('[server]\nport = 9000\n[storage]\ndb = "a.db"\n')
    settings = config.load(path, overrides={"server": {"port": 0}, "storage": {"db": "b.db"}})
    assert settings.server.port == 0
    assert settings.storage.db == "b.db"


def test_a_wrong_value_in_the_file_is_an_error_even_while_an_override_replaces_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobd.toml"
    path.write_text('[server]\nport = "8421"\n')
    with pytest.raises(ConfigError, match=r"^server\.port: Expected `int`, got `str`"):
        config.load(path, overrides={"server": {"port": 0}})  # as JOBD_PORT=0 gives it


def test_a_section_that_is_not_a_table_is_refused_while_overrides_are_given(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobd.toml"
    path.write_text('storage = "x.db"\n')
    with pytest.raises(ConfigError, match=r"^\[storage\] must be a table$"):
        config.load(path, overrides={"storage": {}})  # as `jobd serve` always gives it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "unknown key `prot` in [server]"),
        ("colour = 1\n", "unknown key `colour`"),
        ("[pool]\nmax_worker = 2\n", "unknown key `max_worker` in [pool]"),
        ("[pool.EMAIL]\nfoo = 1\n", "unknown key `foo` in [pool.EMAIL]"),
        ("[pool.FAX]\nmax_workers = 1\n", "unknown job type [pool.FAX]"),
        ('[pool.EMAIL]\nmax_workers = "x"\n', "pool.EMAIL.max_workers: Expected `int`"),
        ('[pool]\ncold_start_s = "five"\n', "pool.cold_start_s: Expected `float`, got `str`"),
        ('[pool]\ncold_start_s = "5"\n', "pool.cold_start_s: Expected `float`, got `str`"),
        ('[server]\nport = "8421"\n', "server.port: Expected `int`, got `str` (write the number"),
        ("[pool]\nmax_workers = 2.5\n", "pool.max_workers: Expected `int`, got `float`"),
        (
            '[storage]\ndurability = "maybe"\n',
            """storage.durability: Invalid enum value 'maybe' (valid values: "full", "normal")""",
        ),
        (
            '[auth]\nmode = "nonee"\n',
            """auth.mode: Invalid enum value 'nonee' (valid values: "none", "jwt", "token")""",
        ),
        ("[auth]\nmode = 1\n", 'got `int` (valid values: "none", "jwt", "token")'),
        (
            '[retention]\nkeep_finished_s = "never"\n',
            "retention.keep_finished_s: Invalid enum value 'never' "
            '(valid values: a number of seconds, "forever")',
        ),
        (
            '[retention]\nkeep_finished_s = "5"\n',
            "retention.keep_finished_s: Invalid enum value '5' (write the number without quotes)",
        ),
        ("[server]\nshutdown_grace_s = -5\n", "server.shutdown_grace_s must not be negative"),
        (
            '[server]\ninsecure = "yes"\n',
            "server.insecure: Expected `bool`, got `str` (write true or false without quotes)",
        ),
        (
            '[pool]\nmax_starts_per_s = "5"\n',
            "pool.max_starts_per_s: Expected `int | null`, got `str` (write the number without",
        ),
        (
            '[[schedules]]\nname = "n"\ncron = "* * * * *"\njob_type = "EMAIL"\n'
            'job_sub_type = "EMAIL_WAKE_UP"\nuser = "u"\nmissed = "never"\n',
            'schedules[0].missed: Invalid enum value \'never\' (valid values: "skip", "run_once")',
        ),
        ("[pool]\nmax_workers = 0\n", "pool.max_workers must be at least 1"),
        ("[server]\nport = 70000\n", "server.port must be between 0 and 65535"),
        ("[server\n", "Expected ']'"),
        ("[cors]\nallowed_origin_regex = '(https://'\n", "cors.allowed_origin_regex is not a"),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "jobd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_relative_paths_in_the_file_are_relative_to_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "jobd.toml").write_text(
        '[storage]\ndb = "data/jobd.db"\n[reports]\nfolder = "out/reports"\n'
        '[email]\noutbox = "/var/mail/jobd"\n'
    )
    settings = config.load(folder / "jobd.toml")
    assert settings.storage.db == str(folder / "data" / "jobd.db")
    assert settings.reports.folder == str(folder / "out" / "reports")
    assert settings.email.outbox == "/var/mail/jobd"  # absolute paths stay as written
    # On the command line (an override) a relative path is relative to where you are.
    typed = config.load(folder / "jobd.toml", overrides={"storage": {"db": "here.db"}})
    assert typed.storage.db == "here.db"


def test_working_files_go_beside_the_database_by_default(tmp_path: Path) -> None:
    settings = config.load(overrides={"storage": {"db": str(tmp_path / "jobs.db")}})
    assert settings.email.outbox == str(tmp_path / "jobs.db-files" / "outbox")
    assert settings.reports.folder == str(tmp_path / "jobs.db-files" / "reports")
    assert config.load().email.outbox == str(Path("jobd.db-files") / "outbox")
    configured = config.from_dict({"email": {"outbox": "mail"}, "reports": {"folder": "r"}})
    assert (configured.email.outbox, configured.reports.folder) == ("mail", "r")


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert config.is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"mode": "jwt"}, "needs exactly one of auth.public_key_file"),
        (
            {"mode": "jwt", "public_key_file": "a.pem", "jwks_file": "b.json"},
            "needs exactly one of",
        ),
        ({"mode": "token"}, "needs at least one [[auth.tokens]]"),
        ({"mode": "token", "tokens": [{"sha256": "abc", "user": "u"}]}, "not 64 hex digits"),
        (
            {"mode": "token", "tokens": [{"sha256": "a" * 64, "user": "u", "roles": ["read"]}]},
            "auth.tokens: user 'u' has unknown role 'read' (roles: job-service-read, "
            "job-service-write, job-service-admin, job-service-worker; [auth.roles] renames them)",
        ),
        ({"mode": "ldap"}, "auth.mode: Invalid enum value 'ldap'"),
        # Tokens pasted without mode = "token" were ignored: in mode "none" anyone had every
        # role. jwt ignored them too.
        (
            {"tokens": [{"sha256": "a" * 64, "user": "u"}]},
            '[[auth.tokens]] are configured but auth.mode is "none", which ignores them and lets '
            'anyone act with every role: set mode = "token" under [auth], or remove the tokens',
        ),
        (
            {
                "mode": "jwt",
                "public_key_file": "a.pem",
                "tokens": [{"sha256": "a" * 64, "user": "u"}],
            },
            'auth.mode is "jwt", which ignores them: set mode = "token" under [auth], or remove',
        ),
        # A JWT issuer set up without mode = "jwt" was ignored the same way.
        (
            {"realm_url": "https://keycloak.example/auth/realms/provena"},
            'auth.realm_url is set but auth.mode is "none", which ignores it and lets anyone act '
            'with every role: set mode = "jwt" under [auth], or remove it',
        ),
        (
            {
                "mode": "token",
                "tokens": [{"sha256": "a" * 64, "user": "u"}],
                "issuer": "https://idp.example",
                "audience": "job-api",
            },
            'auth.issuer, auth.audience are set but auth.mode is "token", which ignores them: '
            'set mode = "jwt" under [auth], or remove them',
        ),
    ],
)
def test_each_auth_mode_needs_its_settings(auth: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_dict({"auth": auth})
    assert message in caught.value.message


SUPPORTED_DATABASES = (
    "which jobd does not support: use a SQLite path, sqlite:///relative/path, "
    "sqlite:////absolute/path or postgresql://user@host:5432/name"
)


@pytest.mark.parametrize("where", ["file", "override"])
@pytest.mark.parametrize(
    ("db", "said"),
    [
        ("mysql://x/y", "the database 'mysql://x/y' is a mysql:// URL, "),
        ("mysql://jobd:s3cret@db/jobs", "the database 'mysql://jobd@db/jobs' is a mysql:// URL, "),
        ("sqlite://jobd.db", "the database 'sqlite://jobd.db' is a sqlite:// URL, "),
    ],
)
def test_a_database_url_jobd_does_not_support_says_so(
    tmp_path: Path, where: str, db: str, said: str
) -> None:
    """`--db mysql://x/y` used to be taken for a path: "the database folder does not exist"."""
    path = tmp_path / "jobd.toml"
    path.write_text(f'[storage]\ndb = "{db}"\n' if where == "file" else "")
    with pytest.raises(ConfigError) as caught:
        config.load(path, overrides={"storage": {"db": db}} if where == "override" else None)
    assert caught.value.message == said + SUPPORTED_DATABASES  # never the password


@pytest.mark.parametrize(
    ("db", "file"),
    [
        ("sqlite:///data/jobd.db", "data/jobd.db"),
        ("sqlite:////var/lib/jobd.db", "/var/lib/jobd.db"),
        ("postgresql://jobd@db.example:5432/jobd", None),
    ],
)
def test_the_database_forms_jobd_supports(db: str, file: str | None) -> None:
    storage = config.load(overrides={"storage": {"db": db}}).storage
    assert config.is_postgres_url(storage.db) is (file is None)
    if file is not None:
        assert config.sqlite_path(storage.db) == file


def test_the_sample_config_keeps_auth_off_and_cors_closed() -> None:
    settings = config.load(REPO / "jobd.toml")
    assert settings.auth == config.AuthSettings()
    assert settings.cors.allowed_origins == []


def test_the_sample_config_routes_nothing_away_from_the_builtins() -> None:
    settings = config.load(REPO / "jobd.toml")
    assert settings.jobs == {}
    assert settings.email.smtp_host is None and settings.reports.url_ttl_s == 10_800.0
