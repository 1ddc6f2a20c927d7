"""Settings of several controllers: validated once, with a hint; a controller's session under its id."""

from __future__ import annotations

from pathlib import Path

import pytest

from speakerctl.config import Settings, load_settings
from speakerctl.controller.session import serve_session
from speakerctl.errors import ConfigError, ProtocolError
from speakerctl.protocol import topics


@pytest.mark.parametrize(
    "values",
    [
        {"controller_id": "ctl a"},
        {"controller_id": "x" * 65},
        {"lease_ttl_s": 5.0, "lease_renew_s": 3.0},
        {"lease_renew_s": 0.0},
        {"shared_group": "speak/erctl"},
        {"shared_group": "a+b"},
        {"ingest_nats": "mqtt://127.0.0.1:1883"},
        {"ingest_nats": "nats://127.0.0.1:4222,127.0.0.1:4223"},
        {"ingest_nats": "nats://127.0.0.1:port"},
        {"ingest_nats": "nats://:4222"},
        {"ingest_nats": "nats://127.0.0.1:4222", "shared_group": "speakerctl"},
    ],
)
def test_unusable_cluster_settings_are_refused_with_a_hint(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(**values)  # type: ignore[arg-type]
    assert caught.value.hint


def test_cluster_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "SPEAKERCTL_CONTROLLER_ID": "ctl-soctrang-2",
        "SPEAKERCTL_LEASE_TTL_S": "8",
        "SPEAKERCTL_LEASE_RENEW_S": "2",
        "SPEAKERCTL_SHARED_GROUP": "speakerctl",
        "SPEAKERCTL_CONTENT_ROOT": str(tmp_path / "shared"),
    }
    settings = load_settings(env=env)
    assert (settings.lease_ttl_s, settings.lease_renew_s) == (8.0, 2.0)
    assert settings.content_dir == tmp_path / "shared"
    session = serve_session(tmp_path, settings.client_id, settings.controller_id)
    assert session.client_id == "ctl-soctrang-2" and session.persistent


def test_status_ingestion_through_nats_is_a_list_of_nats_urls(tmp_path: Path) -> None:
    assert load_settings(env={}).ingest_nats_urls == ()  # statuses over MQTT unless told
    env = {"SPEAKERCTL_INGEST_NATS": "nats://n1:4222, nats://n2:4222,tls://n3:4222"}
    assert load_settings(env=env).ingest_nats_urls == ("nats://n1:4222", "nats://n2:4222", "tls://n3:4222")
    config = tmp_path / "speakerctl.toml"
    config.write_text('ingest_nats = ["nats://n1:4222", "nats://n2:4222"]\n', encoding="utf-8")
    assert load_settings(config, env={}).ingest_nats_urls == ("nats://n1:4222", "nats://n2:4222")


def test_a_shared_subscription_filter_names_its_group() -> None:
    assert topics.shared(topics.ALL_STATUS, "") == topics.ALL_STATUS
    assert topics.shared(topics.ALL_STATUS, "speakerctl") == "$share/speakerctl/pa/v1/dev/+/status"
    with pytest.raises(ProtocolError):
        topics.shared(topics.ALL_STATUS, "a#")
