"""CLI of the security work: keys, provisioning errors, broker config with TLS, resume."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.cli.main import app, exit_code
from speakerctl.errors import ConfigError, SpeakerctlError
from speakerctl.security.keys import load_or_create_signer


def _run(*args: str) -> tuple[int, str]:
    """Exit code as `speakerctl` would give it (errors mapped as in main()), and the output."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SpeakerctlError):
        return exit_code(result.exception), result.output
    return result.exit_code, result.output


def test_keys_init_list_rotate_retire(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    code, out = _run(*data, "keys", "init")
    assert code == 0 and "trusted.pub" in out
    (first,) = json.loads(_run(*data, "keys", "list", "--json")[1])
    assert first["active"]
    assert _run(*data, "keys", "rotate")[0] == 0
    keys = json.loads(_run(*data, "keys", "list", "--json")[1])
    assert [k["active"] for k in keys] == [False, True]
    assert _run(*data, "keys", "retire", keys[1]["key_id"])[0] == 4  # the active key: refused
    assert _run(*data, "keys", "retire", first["key_id"])[0] == 0
    assert [k["key_id"] for k in json.loads(_run(*data, "keys", "list", "--json")[1])] == [keys[1]["key_id"]]


def test_provision_refuses_unknown_clusters_and_shows_secrets_once(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert _run(*data, "devices", "provision", "khong-co-cum-nay")[0] == 5
    code, out = _run(*data, "devices", "provision", "--zone", "st-tp-soc-trang-phuong-1")
    assert code == 0 and "shown once" in out
    stored = (tmp_path / "credentials.json").read_text()
    assert "$7$101$" in stored
    assert _run(*data, "broker", "config", "mosquitto", "--out", str(tmp_path / "b"))[0] == 4  # no controller


def test_broker_config_with_tls_files(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert _run(*data, "devices", "provision", "--controller")[0] == 0
    half = [*data, "broker", "config", "mosquitto", "--out", str(tmp_path / "b"), "--cafile", "ca.pem"]
    assert _run(*half)[0] == 2
    full = [*half, "--certfile", "b.pem", "--keyfile", "b.key", "--port", "8883"]
    assert _run(*full)[0] == 0
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    assert "listener 8883" in conf and "cafile" in conf and "allow_anonymous false" in conf


def test_resume_with_nothing_interrupted(tmp_path: Path, embedded_broker: EmbeddedBroker) -> None:
    code, out = _run("--data-dir", str(tmp_path), "--broker", embedded_broker.url, "resume")
    assert code == 0 and "no interrupted broadcast" in out


def test_a_key_passphrase_encrypts_the_signing_key_on_disk(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    secret = {"SPEAKERCTL_KEY_PASSPHRASE": "mật khẩu dài"}
    result = CliRunner().invoke(app, [*data, "keys", "init"], env=secret)
    assert result.exit_code == 0, result.output
    (pem,) = (tmp_path / "keys").glob("command-*.key")
    assert pem.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    signer = load_or_create_signer(tmp_path / "keys", "mật khẩu dài".encode())
    assert signer.public_line() in (tmp_path / "keys" / "trusted.pub").read_text()
    signature = signer.private.sign(b"tin khan")
    signer.private.public_key().verify(signature, b"tin khan")
    passfile = tmp_path / "passphrase"
    passfile.write_text("mật khẩu dài\n")
    from_file = {"SPEAKERCTL_KEY_PASSPHRASE_FILE": str(passfile)}
    listed = CliRunner().invoke(app, [*data, "keys", "list"], env=from_file)
    assert listed.exit_code == 0 and signer.key_id in listed.output


def test_a_missing_or_wrong_key_passphrase_is_a_configuration_error(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    right = {"SPEAKERCTL_KEY_PASSPHRASE": "đúng"}
    assert CliRunner().invoke(app, [*data, "keys", "init"], env=right).exit_code == 0
    for env in ({"SPEAKERCTL_KEY_PASSPHRASE": ""}, {"SPEAKERCTL_KEY_PASSPHRASE": "sai"}):
        result = CliRunner().invoke(app, [*data, "keys", "list"], env=env)
        assert isinstance(result.exception, ConfigError) and exit_code(result.exception) == 4
        assert "passphrase" in str(result.exception) and "SPEAKERCTL_KEY_PASSPHRASE" in result.exception.hint
