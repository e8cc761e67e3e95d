"""MQTT ingestion: parsing and dead-letter reasons without a broker; then against Mosquitto on
127.0.0.1:1883 (readings stored once, dead letters recorded), and against a broker of our own
killed and restarted mid-stream (every published cycle stored exactly once)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from verticals.core.accounts.users import OPERATOR
from verticals.core.db import session_scope
from verticals.domains.manufacturing.ingest import (
    BrokerUrl,
    IngestError,
    IngestStats,
    MqttIngestor,
    Rejected,
    asset_level,
    parse_message,
)
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.schemas import AssetIn
from verticals.domains.manufacturing.service import ManufacturingService
from verticals.domains.manufacturing.tables import AssetRow, ReadingRow

BROKER = ("127.0.0.1", 1883)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MIGRATIONS = Path(__file__).parents[3] / "domains" / "manufacturing" / "migrations"


def reading(cycle: int, bump: float = 0.0) -> dict:
    return {
        "cycle": cycle,
        **{c: round(0.5 + i + cycle / 1000 + bump, 4) for i, c in enumerate(READING_COLUMNS)},
    }


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mf_service(db, plugins) -> ManufacturingService:
    """The database migrated for manufacturing too (whether or not its entry point is
    installed in this environment) and a service on it."""
    from verticals.core.db.migrate import upgrade

    dirs = plugins.migration_dirs()
    if "manufacturing" not in plugins.domains:
        dirs.append(MIGRATIONS)
    upgrade(dirs)
    return ManufacturingService()


@pytest.fixture
def operator():
    return OPERATOR.model_copy(update={"name": "mqtt ingest test", "tenant": "plant-a"})


def stored_cycles(asset_id: str) -> list[int]:
    query = (
        select(ReadingRow.cycle)
        .join(AssetRow, AssetRow.id == ReadingRow.asset_pk)
        .where(AssetRow.asset_id == asset_id)
        .order_by(ReadingRow.cycle)
    )
    with session_scope() as session:
        return list(session.scalars(query))


def publisher(host: str, port: int, client_id: str | None = None) -> mqtt.Client:
    """A QoS 1 publisher; with ``client_id``, on a persistent session of its own."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5
    )
    client.reconnect_delay_set(1, 1)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300 if client_id else 0
    client.connect_async(host, port, clean_start=client_id is None, properties=props)
    client.loop_start()
    return client


def publish_reliably(client: mqtt.Client, topic: str, payload: bytes, timeout_s: float) -> None:
    """Publish at QoS 1 until the broker acknowledges (again after a broker outage: the
    ingestion is idempotent, a duplicate changes nothing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.is_connected():
            info = client.publish(topic, payload, qos=1)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
            if info.is_published():
                return
        time.sleep(0.05)
    raise AssertionError(f"the broker did not acknowledge a message on {topic} in time")


class Running:
    """An ingestor running in a thread (signals stay with pytest's main thread)."""

    def __init__(self, ingestor: MqttIngestor) -> None:
        self.ingestor = ingestor
        self.result: IngestStats | BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.ingestor.run(seconds=60)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.result = exc

    def __enter__(self) -> MqttIngestor:
        self.thread.start()
        assert self.ingestor.subscribed.wait(10), "the ingestor did not subscribe"
        return self.ingestor

    def __exit__(self, *_exc: object) -> None:
        self.ingestor.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert not isinstance(self.result, BaseException), self.result


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- without a broker ---------------------------------------------------------------------------
def test_the_asset_is_the_level_of_the_first_plus() -> None:
    assert asset_level("plant/+/readings") == 1
    assert asset_level("site/+/line/+/readings") == 1
    assert asset_level("$share/ingest/plant/+/readings") == 1
    with pytest.raises(ValueError, match="no '\\+' level"):
        asset_level("plant/#")


def test_broker_urls() -> None:
    assert BrokerUrl.parse("mqtt://h:1884") == BrokerUrl("h", 1884, False, None, None)
    assert BrokerUrl.parse("mqtts://u:p%40ss@h").port == 8883
    assert BrokerUrl.parse("mqtts://u:p%40ss@h").password == "p@ss"
    with pytest.raises(ValueError, match="mqtt://HOST:PORT"):
        BrokerUrl.parse("http://h:1883")


def test_messages_are_parsed_with_the_routes_schema() -> None:
    asset, batch = parse_message(
        "plant/unit-1/readings",
        json.dumps({"readings": [reading(1), reading(2)]}).encode(),
        1,
        10_000,
    )
    assert asset == "unit-1" and [r.cycle for r in batch] == [1, 2]
    _, [one] = parse_message("plant/unit-1/readings", json.dumps(reading(3)).encode(), 1, 10_000)
    assert one.cycle == 3


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "says"),
    [
        ("p/unit-1/r", b"x" * 20_001, "oversize", "20001 bytes"),
        ("p/unit-1/r", b"{not json", "bad_json", "JSON"),
        ("p/unit-1/r", b"\xff\xfe\x00garbage", "bad_json", "JSON"),
        (
            "p/unit-1/r",
            json.dumps({**reading(1), "sensor_4": "hot"}).encode(),
            "schema",
            "sensor_4",
        ),
        ("p/unit-1/r", b'{"readings": [{"cycle": 1, "sensor_2": NaN}]}', "schema", "readings.0"),
        ("p/unit-1/r", json.dumps([reading(1)]).encode(), "schema", "a list"),
        ("p/unit-1/r", b'{"readings": []}', "schema", "readings"),
        ("p/bad id!/r", json.dumps(reading(1)).encode(), "bad_topic", "asset id"),
    ],
)
def test_unusable_messages_are_rejected_with_a_reason(topic, payload, reason, says) -> None:
    with pytest.raises(Rejected) as caught:
        parse_message(topic, payload, 1, 20_000)
    assert caught.value.reason == reason and says in caught.value.error
    assert "hot" not in caught.value.error  # no payload values in the error text


def test_bad_arguments_are_refused_by_name(operator) -> None:
    with pytest.raises(ValueError, match="qos"):
        MqttIngestor(ManufacturingService(), operator, "mqtt://h:1", "p/+/r", qos=0)
    with pytest.raises(ValueError, match="'\\+'"):
        MqttIngestor(ManufacturingService(), operator, "mqtt://h:1", "p/#")


def _locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


def test_a_transient_database_error_is_retried_then_gives_up_unacknowledged(operator) -> None:
    ingestor = MqttIngestor(ManufacturingService(), operator, "mqtt://h:1", "p/+/r", db_retries=3)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "stored"

    assert ingestor._with_retries(flaky) == "stored" and len(calls) == 3

    def down() -> None:
        raise _locked()

    with pytest.raises(IngestError, match="unacknowledged"):
        ingestor._with_retries(down)


# -- against the local Mosquitto ----------------------------------------------------------------
@pytest.mark.skipif(
    not _reachable(*BROKER), reason="needs an MQTT broker (Mosquitto) on 127.0.0.1:1883"
)
def test_readings_are_stored_once_and_bad_messages_become_dead_letters(
    mf_service, operator, caplog
) -> None:
    mf_service.register_asset(operator, AssetIn(asset_id="unit-1", kind="turbofan"))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    ingestor = MqttIngestor(
        mf_service,
        operator,
        "mqtt://127.0.0.1:1883",
        f"{prefix}/+/readings",
        client_id=f"{prefix}-ingest",
        session_expiry_s=30,
        max_payload_bytes=50_000,
    )
    batch = json.dumps({"readings": [reading(1), reading(2), reading(3)]}).encode()
    messages = [
        ("unit-1", batch),
        ("unit-1", batch),  # a duplicate: stored once
        ("unit-1", json.dumps(reading(4)).encode()),
        ("unit-1", json.dumps(reading(3)).encode()),  # the same cycle again, alone
        ("unit-1", b'{"readings": [{"cycle": 5,'),  # malformed JSON
        ("unit-1", json.dumps({**reading(6), "sensor_4": "SECRET-VALUE"}).encode()),
        ("unit-999", json.dumps(reading(1)).encode()),  # unknown asset
        ("unit-1", json.dumps(reading(2, bump=1.0)).encode()),  # cycle 2 with other values
        ("unit-1", b" " * 60_000),  # oversize
    ]
    pub = publisher(*BROKER)
    try:
        with Running(ingestor), caplog.at_level("INFO"):
            for asset, payload in messages:
                publish_reliably(pub, f"{prefix}/{asset}/readings", payload, 10)
            wait_for(lambda: ingestor.stats.messages == len(messages), 10, "every message")
    finally:
        pub.disconnect()
        pub.loop_stop()
    assert stored_cycles("unit-1") == [1, 2, 3, 4]
    stats = ingestor.stats
    assert (stats.readings_accepted, stats.readings_unchanged) == (4, 4)
    assert stats.dead_letters == {
        "bad_json": 1,
        "schema": 1,
        "unknown_asset": 1,
        "conflict": 1,
        "oversize": 1,
    }
    letters = {d.error.split(":")[0]: d for d in mf_service.dead_letters(operator)}
    assert set(letters) == set(stats.dead_letters)
    assert "sensor_4" in letters["schema"].error
    assert "unit-999" in letters["unknown_asset"].error
    assert letters["unknown_asset"].topic == f"{prefix}/unit-999/readings"
    assert "cycle 2" in letters["conflict"].error
    assert letters["oversize"].payload_bytes == 60_000
    assert all(d.source == "mqtt" for d in letters.values())
    assert "SECRET-VALUE" not in caplog.text  # nothing of a payload in the logs


# -- a broker of our own, restarted mid-stream ----------------------------------------------------
class Broker:
    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        (folder / "data").mkdir()
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder / 'data'}/\nlog_dest none\n"
            # as root, mosquitto would drop to the user "mosquitto", who cannot write here
            f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)])
        wait_for(lambda: _reachable("127.0.0.1", self.port), 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # saves its persistence and exits
            self.process.wait(10)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).is_file():
        pytest.skip("needs the mosquitto binary (apt-get install mosquitto)")
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def test_a_broker_restart_mid_stream_loses_nothing(
    mf_service, operator, own_broker, monkeypatch
) -> None:
    mf_service.register_asset(operator, AssetIn(asset_id="engine-7", kind="turbofan"))
    store = mf_service.ingest_readings

    def slow_store(*args, **kwargs):  # noqa: ANN202 - a backlog when the broker goes away
        time.sleep(0.02)
        return store(*args, **kwargs)

    monkeypatch.setattr(mf_service, "ingest_readings", slow_store)
    ingestor = MqttIngestor(
        mf_service,
        operator,
        f"mqtt://127.0.0.1:{own_broker.port}",
        "plant/+/readings",
        client_id="ingest-restart-test",
        reconnect_delay=(1, 1),
    )
    cycles = 60
    pub = publisher("127.0.0.1", own_broker.port, client_id="plant-gateway")
    try:
        with Running(ingestor):
            for cycle in range(1, cycles + 1):
                payload = json.dumps(reading(cycle)).encode()
                publish_reliably(pub, "plant/engine-7/readings", payload, 15)
                if cycle == 25:
                    assert len(stored_cycles("engine-7")) < 25  # still working through them
                    own_broker.stop()
                    own_broker.start()
            wait_for(lambda: len(stored_cycles("engine-7")) == cycles, 10, "every cycle")
            assert ingestor.stats.connects >= 2  # it reconnected by itself
    finally:
        pub.disconnect()
        pub.loop_stop()
    assert stored_cycles("engine-7") == list(range(1, cycles + 1))
    assert ingestor.stats.dead_letters == {}


@pytest.mark.skipif(
    not _reachable(*BROKER), reason="needs an MQTT broker (Mosquitto) on 127.0.0.1:1883"
)
def test_the_cli_verb_runs_for_the_given_seconds_and_prints_totals(mf_service) -> None:
    import typer
    from typer.testing import CliRunner
    from verticals.domains.manufacturing.ingest import ingest_command

    app = typer.Typer()
    app.command()(ingest_command(mf_service))
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    args = ["--mqtt", "mqtt://127.0.0.1:1883", "--topic", f"{prefix}/+/readings"]
    args += ["--client-id", f"{prefix}-cli", "--seconds", "1", "--session-expiry", "5"]
    args += ["--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout.strip().splitlines()[-1])
    assert totals["messages"] == 0 and totals["connects"] == 1
    bad = CliRunner().invoke(app, ["--mqtt", "mqtt://127.0.0.1:1883", "--topic", "plant/#"])
    assert bad.exit_code != 0 and "'+'" in bad.output
