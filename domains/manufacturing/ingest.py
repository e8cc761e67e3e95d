"""Sensor readings from a plant's MQTT broker: ``verticals ingest manufacturing --mqtt URL``.

What a message is: JSON in the HTTP route's schema, ``{"readings": [...]}`` (``ReadingsIn``), or
one reading object; the asset is named by the topic, not the payload: the level of the topic that
the subscription's FIRST ``+`` wildcard matched (``plant/+/readings`` receives
``plant/unit-7/readings`` for ``unit-7``; a ``$share/<group>/`` prefix is not counted).

What is never lost: the subscription is QoS 1 (or 2) on a persistent session (a stable client id,
MQTT 5 ``clean_start=False`` with a session expiry), and messages are acknowledged by hand, one at
a time in the order received, only after their readings (or their dead letter) are committed. A
message that arrived but was not acknowledged is delivered again by the broker: after a reconnect,
or at the next start after a crash or Ctrl-C. Storing is idempotent on (asset, cycle), so a
redelivery changes nothing. A message received on a connection that has since dropped is left
for that redelivery (a PUBACK may only answer the connection the PUBLISH came on).

What goes wrong, and where it goes:

- an unusable message (oversize, not UTF-8 JSON, schema error, a topic naming no valid asset id,
  an unknown asset, a cycle stored with other values, any other 4xx of the service) becomes a row
  in ``manufacturing_dead_letters`` with its reason, counted in
  ``verticals_manufacturing_dead_letters_total{reason}``, and is acknowledged: it never blocks
  the stream;
- a transient database error (lost connection, a locked SQLite file) is retried with backoff;
  when the retries run out the ingestor stops WITHOUT acknowledging, so the broker keeps the
  message for the next start;
- the broker going away: paho reconnects with backoff, the session (subscription, unacknowledged
  messages) survives on the broker.
- anything else (a bug, not the message's fault) stops the ingestor unacknowledged too, rather
  than dead-lettering good readings.

What the broker must be configured for: persistence (else a broker restart forgets the session),
and a queue deep enough for the backlog expected while the ingestor is slow or away. Mosquitto
drops QoS 1 messages for a client beyond ``max_queued_messages`` (default 1000): raise it (or
set ``max_queued_bytes`` instead) to cover the longest outage times the plant's message rate.

Logs carry counts, reasons and topics, never payload contents.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from verticals.core.accounts.users import OPERATOR
from verticals.core.auth import Principal
from verticals.core.errors import Conflict, NotFound, VerticalsError
from verticals.domains.manufacturing.schemas import AssetId, ReadingsIn, TurbofanReading
from verticals.domains.manufacturing.service import ManufacturingService

log = logging.getLogger(__name__)

SOURCE = "mqtt"
MAX_PAYLOAD_BYTES = 1 << 20  # ~1,400 readings; larger batches belong to the upload route
SESSION_EXPIRY_S = 7 * 24 * 3600  # how long the broker keeps our session while we are away
DB_RETRIES = 8  # backoff 0.1 s doubling to 5 s: about 20 s of database outage survived
RECEIVE_MAXIMUM = 64  # unacknowledged messages the broker may have in flight to us

DEAD_LETTERS = Counter(
    "verticals_manufacturing_dead_letters_total",
    "Ingested messages that could not be used, by reason",
    ["reason"],
)
READINGS_INGESTED = Counter(
    "verticals_manufacturing_readings_ingested_total",
    "Readings received by ingestion: accepted (new) or unchanged (already stored)",
    ["source", "outcome"],
)
ASSET_ID = TypeAdapter(AssetId)


class IngestError(RuntimeError):
    """The ingestor stopped without acknowledging the message in hand (it will be redelivered)."""


class Rejected(Exception):
    """A message that cannot be used: ``reason`` (a metric label) and a message-free ``error``."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


class IngestStats(BaseModel):
    messages: int = Field(0, description="messages handled and acknowledged")
    readings_accepted: int = 0
    readings_unchanged: int = 0
    dead_letters: dict[str, int] = Field(default_factory=dict, description="by reason")
    connects: int = Field(0, description="successful connections (1 + reconnects)")
    seconds: float = 0.0


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"--mqtt must look like mqtt://HOST:PORT (or mqtts://), got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def asset_level(topic_filter: str) -> int:
    """Index of the topic level holding the asset id: the filter's first ``+``."""
    levels = topic_filter.split("/")
    if levels[0] == "$share" and len(levels) > 2:
        levels = levels[2:]
    if "+" not in levels:
        raise ValueError(
            f"topic {topic_filter!r} has no '+' level: the asset id is read from the level "
            "its first '+' matches (e.g. 'plant/+/readings')"
        )
    return levels.index("+")


def parse_message(topic: str, payload: bytes, level: int, max_bytes: int) -> tuple[str, list[Any]]:
    """(asset id, readings) of one message, or :class:`Rejected`."""
    if len(payload) > max_bytes:
        raise Rejected("oversize", f"payload of {len(payload)} bytes; at most {max_bytes}")
    levels = topic.split("/")
    asset_id = levels[level] if level < len(levels) else ""
    try:
        ASSET_ID.validate_python(asset_id)
    except ValidationError:
        raise Rejected("bad_topic", f"topic level {level} is not a valid asset id") from None
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Rejected("bad_json", f"not UTF-8 JSON: {type(exc).__name__}") from None
    try:
        if isinstance(body, dict) and "readings" in body:
            return asset_id, list(ReadingsIn.model_validate(body).readings)
        if isinstance(body, dict):
            return asset_id, [TurbofanReading.model_validate(body)]
    except ValidationError as exc:
        raise Rejected("schema", _describe(exc)) from None
    raise Rejected(
        "schema", f'expected {{"readings": [...]}} or one reading object, got {_kind(body)}'
    )


def _describe(exc: ValidationError, most: int = 5) -> str:
    """The fields at fault and why, without their values (they are untrusted sensor data)."""
    errors = exc.errors(include_input=False, include_url=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in errors[:most]]
    more = f" (+{len(errors) - most} more)" if len(errors) > most else ""
    return "; ".join(parts) + more


def _kind(body: Any) -> str:
    return "a list" if isinstance(body, list) else type(body).__name__


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass(frozen=True)
class _Message:
    generation: int
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttIngestor:
    """Subscribes to ``topic`` on the broker at ``url`` and writes readings through ``service``
    as ``principal`` (its tenant owns the assets). :meth:`run` blocks until stopped."""

    def __init__(
        self,
        service: ManufacturingService,
        principal: Principal,
        url: str,
        topic: str,
        *,
        client_id: str | None = None,
        qos: int = 1,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        session_expiry_s: int = SESSION_EXPIRY_S,
        reconnect_delay: tuple[int, int] = (1, 30),
        db_retries: int = DB_RETRIES,
        progress: Callable[[IngestStats], Any] | None = None,
        progress_every_s: float = 10.0,
    ) -> None:
        if qos not in (1, 2):
            raise ValueError(f"qos must be 1 or 2 (acknowledged delivery), got {qos}")
        if max_payload_bytes <= 0:
            raise ValueError(f"max_payload_bytes must be > 0, got {max_payload_bytes}")
        if db_retries < 1:
            raise ValueError(f"db_retries must be >= 1, got {db_retries}")
        self.service, self.principal, self.topic, self.qos = service, principal, topic, qos
        self.broker = BrokerUrl.parse(url)
        self.level = asset_level(topic)
        self.client_id = client_id or f"verticals-manufacturing-{principal.tenant}"
        self.max_payload_bytes, self.db_retries = max_payload_bytes, db_retries
        self.progress, self.progress_every_s = progress, progress_every_s
        self.stats = IngestStats()
        self.subscribed = threading.Event()  # set once the subscription is granted
        self._stop = threading.Event()
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._lock = threading.Lock()
        self._generation = 0
        self._client = self._make_client(session_expiry_s, reconnect_delay)

    # -- the paho client (its network thread calls these) --------------------------------------
    def _make_client(self, session_expiry_s: int, reconnect_delay: tuple[int, int]) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(*reconnect_delay)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._connect_properties = Properties(PacketTypes.CONNECT)
        self._connect_properties.SessionExpiryInterval = session_expiry_s
        self._connect_properties.ReceiveMaximum = RECEIVE_MAXIMUM
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
            self.stats.connects += 1
        log.info(
            "connected to %s:%d (session %s)",
            self.broker.host,
            self.broker.port,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(self.topic, qos=self.qos)  # again on a resumed session: harmless

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._lock:
            self._generation += 1
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in codes):
            log.error("the broker refused the subscription to %r: %s", self.topic, codes)
            return
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            generation = self._generation
        self._inbox.put(
            _Message(generation, message.topic, bytes(message.payload), message.mid, message.qos)
        )

    # -- the worker (the thread that called run) -----------------------------------------------
    def run(self, max_messages: int | None = None, seconds: float | None = None) -> IngestStats:
        """Ingest until ``max_messages`` were handled, ``seconds`` passed, :meth:`stop`, SIGINT
        or SIGTERM. Raises :class:`IngestError` when the database stays unreachable."""
        started = time.monotonic()
        deadline = None if seconds is None else started + seconds
        restore = self._handle_signals()
        self._client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=False,
            properties=self._connect_properties,
        )
        self._client.loop_start()  # connects, and reconnects with backoff, in its own thread
        next_progress = started + self.progress_every_s
        try:
            while not self._stop.is_set():
                if max_messages is not None and self.stats.messages >= max_messages:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if self.progress is not None and now >= next_progress:
                    self.progress(self.stats)
                    next_progress = now + self.progress_every_s
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
                try:
                    message = self._inbox.get(timeout=wait)
                except queue.Empty:
                    continue
                self._handle(message)
        finally:
            self._stop.set()  # one run per ingestor; our own disconnect is not an outage
            self._client.disconnect()
            self._client.loop_stop()
            restore()
            self.stats.seconds = round(time.monotonic() - started, 3)
            log.info(
                "ingestion stopped: %d messages, %d readings accepted, %d unchanged, "
                "dead letters %s",
                self.stats.messages,
                self.stats.readings_accepted,
                self.stats.readings_unchanged,
                self.stats.dead_letters,
            )
        return self.stats

    def stop(self) -> None:
        """Stop after the message in hand (thread-safe; unhandled messages stay unacknowledged)."""
        self._stop.set()

    def _handle_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, lambda _signum, _frame: self.stop())

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _handle(self, message: _Message) -> None:
        if message.generation != self._current_generation():
            return  # its connection dropped: the broker delivers it again on this one
        try:
            asset_id, readings = parse_message(
                message.topic, message.payload, self.level, self.max_payload_bytes
            )
            out = self._with_retries(
                lambda: self.service.ingest_readings(
                    self.principal, asset_id, readings, source=SOURCE
                )
            )
        except Rejected as exc:
            self._dead_letter(message, exc.reason, exc.error)
        except VerticalsError as exc:
            reason = (
                "unknown_asset"
                if isinstance(exc, NotFound)
                else "conflict"
                if isinstance(exc, Conflict)
                else "invalid"
            )
            self._dead_letter(message, reason, exc.message)
        else:
            self.stats.readings_accepted += out.accepted
            self.stats.readings_unchanged += out.unchanged
            READINGS_INGESTED.labels(SOURCE, "accepted").inc(out.accepted)
            READINGS_INGESTED.labels(SOURCE, "unchanged").inc(out.unchanged)
        self._ack(message)

    def _dead_letter(self, message: _Message, reason: str, error: str) -> None:
        self._with_retries(
            lambda: self.service.record_dead_letter(
                self.principal.tenant,
                source=SOURCE,
                topic=message.topic,
                error=f"{reason}: {error}",
                payload=message.payload,
            )
        )
        DEAD_LETTERS.labels(reason).inc()
        self.stats.dead_letters[reason] = self.stats.dead_letters.get(reason, 0) + 1
        log.warning(
            "dead letter (%s) from %s: %d bytes", reason, message.topic, len(message.payload)
        )

    def _with_retries(self, work: Callable[[], Any]) -> Any:
        delay = 0.1
        for attempt in range(1, self.db_retries + 1):
            try:
                return work()
            except DBAPIError as exc:
                if not _transient(exc) or attempt == self.db_retries:
                    raise IngestError(
                        f"database unavailable after {attempt} attempts "
                        f"({type(exc.orig).__name__}); the message stays unacknowledged"
                    ) from exc
                log.warning("database error (%s), retry %d", type(exc.orig).__name__, attempt)
                if self._stop.wait(delay):
                    raise IngestError("stopped while the database was unavailable") from exc
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _current_generation(self) -> int:
        with self._lock:
            return self._generation

    def _ack(self, message: _Message) -> None:
        with self._lock:  # no reconnect between the check and the PUBACK
            if message.generation == self._generation:
                self._client.ack(message.mid, message.qos)
        self.stats.messages += 1


# -- the CLI verb -------------------------------------------------------------------------------
def ingest_command(service: ManufacturingService) -> Callable[..., None]:
    def ingest(
        mqtt_url: Annotated[
            str,
            typer.Option(
                "--mqtt", help="the broker: mqtt://[USER:PASS@]HOST:PORT (mqtts:// for TLS)"
            ),
        ],
        topic: Annotated[
            str,
            typer.Option(
                "--topic", help="subscription; the level its first '+' matches is the asset id"
            ),
        ] = "plant/+/readings",
        tenant: Annotated[
            str, typer.Option("--tenant", help="the tenant whose assets the readings feed")
        ] = "default",
        client_id: Annotated[
            str | None,
            typer.Option(
                "--client-id",
                help="MQTT client id naming the persistent session (default "
                "verticals-manufacturing-<tenant>); keep it stable across restarts",
            ),
        ] = None,
        qos: Annotated[int, typer.Option("--qos", min=1, max=2)] = 1,
        max_messages: Annotated[
            int | None, typer.Option("--max-messages", min=1, help="stop after N messages")
        ] = None,
        seconds: Annotated[
            float | None, typer.Option("--seconds", min=0.1, help="stop after S seconds")
        ] = None,
        max_payload_bytes: Annotated[
            int, typer.Option("--max-payload-bytes", min=1, help="larger messages: dead letters")
        ] = MAX_PAYLOAD_BYTES,
        session_expiry: Annotated[
            int,
            typer.Option(
                "--session-expiry",
                min=0,
                help="seconds the broker keeps the session (and unacknowledged messages) "
                "while the ingestor is away",
            ),
        ] = SESSION_EXPIRY_S,
        metrics_port: Annotated[
            int | None,
            typer.Option("--metrics-port", help="serve Prometheus /metrics on 127.0.0.1:PORT"),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="print the totals as one JSON object, last line")
        ] = False,
    ) -> None:
        """Subscribe to sensor readings on an MQTT broker and store them, e.g. --mqtt
        mqtt://broker:1883 --topic 'plant/+/readings': each message is {"readings": [...]} (as
        the HTTP route) or one reading, for the asset named by the topic level of the first '+'.
        QoS 1 on a persistent session, acknowledged only once stored; unusable messages become
        dead letters. Ctrl-C stops cleanly."""
        from rich.console import Console
        from verticals.core.bootstrap import prepare_database
        from verticals.core.plugins import discover

        console = Console(stderr=True)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        prepare_database(discover())
        if metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr="127.0.0.1")
        principal = OPERATOR.model_copy(update={"name": "mqtt ingest", "tenant": tenant})
        try:
            ingestor = MqttIngestor(
                service,
                principal,
                mqtt_url,
                topic,
                client_id=client_id,
                qos=qos,
                max_payload_bytes=max_payload_bytes,
                session_expiry_s=session_expiry,
                progress=lambda s: console.print(
                    f"{s.messages} messages, {s.readings_accepted} readings stored, "
                    f"{s.readings_unchanged} unchanged, {sum(s.dead_letters.values())} dead letters"
                ),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        console.print(f"ingesting {topic!r} from {ingestor.broker.host}:{ingestor.broker.port}")
        try:
            stats = ingestor.run(max_messages=max_messages, seconds=seconds)
        except IngestError as exc:
            console.print(f"[red]stopped: {exc}[/red]")
            raise typer.Exit(1) from None
        console.print(
            f"done: {stats.messages} messages, {stats.readings_accepted} readings stored, "
            f"{stats.readings_unchanged} unchanged, dead letters {stats.dead_letters}"
        )
        if as_json:
            print(stats.model_dump_json())

    return ingest
