"""Shared fixtures: real brokers on free loopback ports, and a guard against leaked asyncio tasks.

The shared system Mosquitto on 127.0.0.1:1883 is never used: every broker here is our own child
process on a free port. Tests that need the mosquitto binary are marked `mosquitto` automatically;
they skip without it, or fail if SPEAKERCTL_REQUIRE_MOSQUITTO=1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa

from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess, find_mosquitto
from speakerctl.broker.ports import free_port
from speakerctl.i18n import set_language

# The suite asserts English output whatever the machine's locale (LANG=vi_VN.UTF-8 would switch the
# CLI to Vietnamese): set before any test module imports speakerctl.cli, which picks the language then.
# A test that wants Vietnamese sets SPEAKERCTL_LANG=vi itself (CliRunner env, monkeypatch, subprocess env).
os.environ["SPEAKERCTL_LANG"] = "en"
# pytest-xdist gives its workers COLUMNS=80, which rich reads once, when the CLI's console is made, and
# keeps for good; without it the console measures at every print, so a test's own COLUMNS holds.
os.environ.pop("COLUMNS", None)
# A suite started in the background of a non-interactive shell (`bash .ci/run &`) inherits SIGINT
# ignored, and so would every speakerctl the tests start (an ignored signal stays ignored across exec),
# which then could not be interrupted as an operator would. Restore what a terminal gives.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REQUIRE_MOSQUITTO = "SPEAKERCTL_REQUIRE_MOSQUITTO"
MOSQUITTO_FIXTURES = frozenset({"mosquitto_binary", "mosquitto", "mosquitto_auth"})
TASK_GRACE = 0.5
"""Seconds a task may take to finish after its test (aiomqtt cancels its own with call_soon)."""

AuthBrokerFactory = Callable[[Mapping[str, str], Sequence[str]], MosquittoProcess]


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Every test starts and ends in English, whatever language an earlier command switched to."""
    set_language("en")
    yield
    set_language("en")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Mosquitto fixture, so `-m "not mosquitto"` leaves them out."""
    for item in items:
        if MOSQUITTO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mosquitto)


@pytest.fixture(scope="session")
def mosquitto_binary() -> str:
    """Path of the mosquitto binary; skip the test without it, or fail if the env requires it."""
    binary = find_mosquitto()
    if binary is None:
        reason = "the mosquitto binary is not installed (apt-get install mosquitto)"
        if os.environ.get(REQUIRE_MOSQUITTO) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_MOSQUITTO}=1 requires it", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture
def mosquitto(tmp_path: Path, mosquitto_binary: str) -> Iterator[MosquittoProcess]:
    """A private Mosquitto for anonymous clients on a free loopback port, fresh for each test."""
    config = MosquittoConfig(port=free_port())
    with MosquittoProcess(config, tmp_path / "mosquitto", binary=mosquitto_binary) as broker:
        yield broker


@pytest.fixture
def mosquitto_auth(tmp_path: Path, mosquitto_binary: str) -> Iterator[AuthBrokerFactory]:
    """Factory: start a Mosquitto that refuses anonymous clients, given users and ACL lines."""
    started: list[MosquittoProcess] = []

    def start(users: Mapping[str, str], acl: Sequence[str] = ()) -> MosquittoProcess:
        config = MosquittoConfig(port=free_port(), allow_anonymous=False, users=users, acl=acl)
        directory = tmp_path / f"mosquitto-auth-{len(started)}"
        started.append(MosquittoProcess(config, directory, binary=mosquitto_binary))
        return started[-1].start()

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    """The embedded broker, one for the whole session: tests must use their own topics."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(autouse=True)
async def no_lingering_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves an asyncio task running on its event loop.

    Covers tests on the default function-scoped loop; a test on a wider loop_scope runs on another
    loop, which this guard does not see.
    """
    before = asyncio.all_tasks()
    yield
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if left:
        _, left = await asyncio.wait(left, timeout=TASK_GRACE)
    for task in left:
        task.cancel()
    if left:
        pytest.fail(f"the test left {len(left)} task(s) running: {sorted(map(repr, left))}")


PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"speakerctl_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("SPEAKERCTL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a throw-away PostgreSQL database (tests of several controllers need PostgreSQL)."""
    yield from _postgres_database()


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """A throw-away PostgreSQL database shared by a module's tests."""
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of each backend: a SQLite file, and a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'lib' / 'speakerctl.db'}"
    else:
        yield from _postgres_database()
