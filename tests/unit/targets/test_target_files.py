"""Target files: read, validated with errors that name the key, and tokens minted."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import jwt
import pytest

from harness.contract import TokenScheme
from harness.errors import ConfigError
from harness.targets import CLIENT_FLAWS, load_target

COMMAND = """
[target]
name = "node"
kind = "command"
contract = "v1"

[command]
argv = ["node", "src/server.js"]
migrate = ["node", "src/migrate.js"]
cwd = "app"
processes = 2
env = { NODE_ENV = "production" }

[auth]
scheme = "jwt-hs256"
claims = { sub = "{user_id}", aud = "alerts" }

[roles]
project_manager = "PROJECT_MANAGER"
field_director = "FIELD_DIRECTOR"
office_staff = "OFFICE_STAFF"
administration = "ADMINISTRATION"

[capabilities]
queue = true
commit_timestamp = true
flaws = ["no_unique_index"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "app").mkdir(exist_ok=True)
    path = tmp_path / "target.toml"
    path.write_text(text)
    return path


def test_the_reference_target_lists_exactly_the_reference_s_flaws() -> None:
    from reference_impl.flaws import DESCRIPTIONS

    target = load_target("reference")
    assert target.kind == "reference"
    assert {"queue", "metrics", "commit_timestamp", "fault_injection"} <= target.capabilities
    # The client's flaws: the harness applies them to any target.
    assert set(CLIENT_FLAWS) == {"no_rejoin", "no_sync", "no_client_dedupe", "no_catchup_overlap"}
    assert set(target.all_flaws) == {str(f) for f in DESCRIPTIONS} | set(CLIENT_FLAWS)


def test_a_command_target_file_is_read_with_paths_from_its_folder(tmp_path: Path) -> None:
    target = load_target(_write(tmp_path, COMMAND))
    assert target.command is not None
    assert target.command.cwd == (tmp_path / "app").resolve()
    assert target.command.argv == ("node", "src/server.js")
    assert target.command.migrate == ("node", "src/migrate.js")
    assert target.command.processes == 2
    assert target.roles is not None
    assert target.roles["project_manager"] == "PROJECT_MANAGER"
    assert target.capabilities == {"queue", "commit_timestamp"}
    assert target.missing(["queue", "fault_injection"]) == ["fault_injection"]
    assert set(target.all_flaws) == {"no_unique_index", *CLIENT_FLAWS}
    claims = jwt.decode(
        target.tokens("s" * 32).mint(42), "s" * 32, algorithms=["HS256"], audience="alerts"
    )
    assert claims["sub"] == "42"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (('kind = "command"', 'kind = "lambda"'), "[target] kind: must be one of"),
        (('contract = "v1"', 'contract = "v9"'), "speaks contract v1"),
        (('argv = ["node", "src/server.js"]', "argv = []"), "[command] argv"),
        (("processes = 2", "processes = 0"), "[command] processes: must be in 1..32"),
        (('cwd = "app"', 'cwd = "nowhere"'), "[command] cwd"),
        (("queue = true", "queue = true\nteleport = true"), "[capabilities] teleport: unknown key"),
        (('office_staff = "OFFICE_STAFF"\n', ""), "[roles] office_staff: is required"),
        (('scheme = "jwt-hs256"', 'scheme = "rot13"'), "[auth] scheme"),
        (('flaws = ["no_unique_index"]', 'flaws = ["no_rejoin"]'), "flaw of the harness's client"),
        (("[auth]", "[oauth]\n[auth]"), "[oauth]: unknown table"),
    ],
)
def test_a_bad_target_file_names_the_key(
    tmp_path: Path, change: tuple[str, str], fragment: str
) -> None:
    text = COMMAND.replace(*change)
    assert text != COMMAND
    with pytest.raises(ConfigError) as caught:
        load_target(_write(tmp_path, text))
    assert fragment in str(caught.value)
    assert str(tmp_path / "target.toml") in str(caught.value)


def test_missing_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_target(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_target(_write(tmp_path, "[target\nname="))


def test_a_url_target_needs_an_http_url_a_dsn_and_its_secret(tmp_path: Path) -> None:
    base = '[target]\nname = "prod"\nkind = "url"\n[url]\n'
    good = base + 'base_url = "http://127.0.0.1:3000/"\npg_dsn = "postgresql://u@127.0.0.1/db"\n'
    with pytest.raises(ConfigError, match=r"\[auth\] secret"):
        load_target(_write(tmp_path, good))
    target = load_target(_write(tmp_path, good + '[auth]\nsecret = "' + "k" * 32 + '"\n'))
    assert target.url is not None
    assert target.url.base_url == "http://127.0.0.1:3000"
    assert target.new_secret() == "k" * 32
    with pytest.raises(ConfigError, match="http:// URL"):
        load_target(_write(tmp_path, good.replace("http://", "ftp://")))
    with pytest.raises(ConfigError, match="pg_dsn"):
        load_target(_write(tmp_path, base + 'base_url = "http://127.0.0.1:3000"\n'))


def test_unknown_flaws_are_refused_naming_the_ones_the_target_has(tmp_path: Path) -> None:
    target = load_target(_write(tmp_path, COMMAND))
    assert target.check_flaws(["no_rejoin"]) == {"no_rejoin"}
    with pytest.raises(ConfigError, match="unknown flaw 'n_plus_one' for target 'node'"):
        target.check_flaws(["n_plus_one"])


def test_hmac_tokens_are_user_dot_hex_digest() -> None:
    token = TokenScheme(scheme="hmac-sha256-hex", secret="k").mint(7)
    digest = hmac.new(b"k", b"7", hashlib.sha256).hexdigest()
    assert token == f"7.{digest}"


def mint_for_test(user_id: int, secret: str) -> str:
    return f"custom-{user_id}-{len(secret)}"


def test_a_module_function_scheme_is_imported_and_called() -> None:
    scheme = TokenScheme(scheme=f"{__name__}:mint_for_test", secret="abc")
    assert scheme.mint(9) == "custom-9-3"
    with pytest.raises(ConfigError, match="cannot import"):
        TokenScheme(scheme="no_such_module_xyz:f", secret="abc")
