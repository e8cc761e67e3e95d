"""The manufacturing use cases: assets, readings, health and fleet, machine scoring, dead
letters, training and evaluation. No HTTP and no Streamlit: the router, the page, the MQTT
subscriber and the CLI all call these methods, so a use case behaves the same everywhere.

Health estimates are computed when an asset's readings (or the production model) changed, then
kept in ``manufacturing_health``: /fleet ranks a thousand assets without running a model per
request, and each estimate is recorded once as a prediction (core's record, with its latency).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.audit import (
    AuditContext,
    Outcome,
    audit_row,
    audited,
    input_sha256,
    record_action,
    record_rows,
)
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.db.session import retrying
from verticals.core.errors import Conflict, InvalidInput, ModelUnavailable, NotFound
from verticals.core.registry import ModelCard, production_version
from verticals.domains.manufacturing import NAME, outcomes, readings
from verticals.domains.manufacturing.health import (
    machine_health,
    turbofan_health,
    unknown_health,
)
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS, read_cmapss
from verticals.domains.manufacturing.model.failure import FailureModel, MachineReading
from verticals.domains.manufacturing.model.rul import RulModel
from verticals.domains.manufacturing.schemas import (
    AssetIn,
    AssetOut,
    DeadLetterOut,
    FleetOut,
    HealthOut,
    MachineScoreIn,
    MachineScoreOut,
    OutcomeIn,
    OutcomeOut,
    ReadingsOut,
    UploadOut,
)
from verticals.domains.manufacturing.settings import get_settings
from verticals.domains.manufacturing.tables import AssetRow, DeadLetterRow, HealthRow

EXCERPT_BYTES = 2_000
FleetOrder = Literal["risk", "asset_id"]


class AssetHistory(BaseModel):
    """What the asset page draws: readings, their normalised values, the RUL over cycles."""

    asset_id: str
    cycles: list[int]
    readings: list[list[float]]  # (n, 24) in READING_COLUMNS order
    used_sensors: list[str]
    zscores: list[list[float]]  # (n, len(used_sensors))
    rul: list[float]
    rul_low: list[float]
    rul_high: list[float]


class ManufacturingService:
    def __init__(self) -> None:
        self._rul: tuple[RulModel, str] | None = None
        self._failure: tuple[FailureModel, str] | None = None

    # -- the production models -------------------------------------------------------------
    def load(self) -> None:
        """Load both production models, each verified against its registered sha256; a model
        with no production version stays unavailable (its routes answer 503)."""
        with session_scope() as session:
            self._rul = _loaded(session, shipping.RUL, RulModel.from_payloads)
            self._failure = _loaded(session, shipping.FAILURE, FailureModel.from_payloads)

    def close(self) -> None:
        self._rul = self._failure = None

    @property
    def model_versions(self) -> dict[str, str]:
        return {
            name: loaded[1]
            for name, loaded in ((shipping.RUL, self._rul), (shipping.FAILURE, self._failure))
            if loaded is not None
        }

    def _rul_if_loaded(self) -> tuple[RulModel, str] | None:
        """The RUL model, loading it once if needed (outside any transaction); None if there
        is no production version (estimates then answer 503, other answers still work)."""
        if self._rul is None:
            self.load()
        return self._rul

    def rul_model(self) -> tuple[RulModel, str]:
        if self._rul is None:
            self.load()
        if self._rul is None:
            raise ModelUnavailable(f"no production model for {NAME}/{shipping.RUL}")
        return self._rul

    def failure_model(self) -> tuple[FailureModel, str]:
        if self._failure is None:
            self.load()
        if self._failure is None:
            raise ModelUnavailable(f"no production model for {NAME}/{shipping.FAILURE}")
        return self._failure

    def model_cards(self) -> dict[str, tuple[str, ModelCard]]:
        """(version, card) of each production model."""
        found: dict[str, tuple[str, ModelCard]] = {}
        with session_scope() as session:
            for name in shipping.MODELS:
                version = production_version(session, NAME, name)
                if version is not None:
                    found[name] = (version.version, version.card)
        return found

    # -- assets ------------------------------------------------------------------------------
    def register_asset(self, actor: Principal, body: AssetIn) -> tuple[AssetOut, bool]:
        """(the asset, created). The same registration again is a no-op; another kind, name or
        line for an existing id is a conflict."""

        def register() -> tuple[AssetOut, bool]:
            with session_scope() as session:
                existing = _find_asset(session, actor.tenant, body.asset_id)
                if existing is not None:
                    _same_asset(existing, body)
                    return AssetOut.model_validate(existing, from_attributes=True), False
                asset = AssetRow(tenant=actor.tenant, **body.model_dump())
                session.add(asset)
                session.flush()
                record_action(
                    session, actor, domain=NAME, action="asset.register", target=body.asset_id
                )
                return AssetOut.model_validate(asset, from_attributes=True), True

        return retrying(register)

    def list_assets(self, viewer: Principal) -> list[AssetOut]:
        query = select(AssetRow).where(AssetRow.tenant == viewer.tenant).order_by(AssetRow.asset_id)
        with session_scope() as session:
            return [
                AssetOut.model_validate(a, from_attributes=True) for a in session.scalars(query)
            ]

    # -- readings ----------------------------------------------------------------------------
    def ingest_readings(
        self, actor: Principal, asset_id: str, batch: Sequence[Any], *, source: str = "api"
    ) -> ReadingsOut:
        """Store turbofan readings (``TurbofanReading`` models) of one asset, idempotent on
        (asset, cycle); the asset's health is estimated afresh at the next query."""
        limit = get_settings().max_readings_per_request
        if len(batch) > limit:
            raise InvalidInput(
                f"{len(batch)} readings in one request; at most {limit}",
                {"field": "readings", "limit": limit},
            )
        cycles = [int(r.cycle) for r in batch]
        values = [r.values() for r in batch]

        def store() -> ReadingsOut:
            with session_scope() as session:
                asset = _turbofan(session, actor.tenant, asset_id)
                accepted, unchanged = readings.store(
                    session, asset.id, asset_id, cycles, values, source
                )
                last = readings.last_cycles(session, [asset.id]).get(asset.id)
            return ReadingsOut(
                asset_id=asset_id, accepted=accepted, unchanged=unchanged, last_cycle=last
            )

        return retrying(store)

    def upload_cmapss(
        self, actor: Principal, payload: bytes, *, source: str = "upload"
    ) -> UploadOut:
        """A C-MAPSS text file: each unit ``n`` becomes turbofan ``unit-<n>`` (created when
        new), its cycles stored with the same idempotency as the readings route."""
        settings = get_settings()
        frame = read_cmapss(payload, max_bytes=settings.max_upload_bytes)
        units = sorted(int(u) for u in frame["unit"].unique())
        if len(units) > settings.max_assets_per_upload:
            raise InvalidInput(
                f"the file has {len(units)} units; at most {settings.max_assets_per_upload}",
                {"field": "file", "limit": settings.max_assets_per_upload},
            )
        values = frame[list(READING_COLUMNS)].to_numpy(dtype=np.float64)
        unit_of = frame["unit"].to_numpy()
        cycle_of = frame["cycle"].to_numpy()

        def store() -> UploadOut:
            with session_scope() as session:
                created, accepted, unchanged = [], 0, 0
                for unit in units:
                    asset_id = f"unit-{unit}"
                    asset = _find_asset(session, actor.tenant, asset_id)
                    if asset is None:
                        asset = AssetRow(tenant=actor.tenant, asset_id=asset_id, kind="turbofan")
                        session.add(asset)
                        session.flush()
                        created.append(asset_id)
                    elif asset.kind != "turbofan":
                        raise Conflict(
                            f"asset {asset_id!r} is a {asset.kind}, not a turbofan",
                            {"asset_id": asset_id},
                        )
                    rows = unit_of == unit
                    new, same = readings.store(
                        session,
                        asset.id,
                        asset_id,
                        cycle_of[rows].tolist(),
                        values[rows].tolist(),
                        source,
                    )
                    accepted, unchanged = accepted + new, unchanged + same
                if created:
                    record_action(
                        session,
                        actor,
                        domain=NAME,
                        action="readings.upload",
                        target=f"{len(units)} units",
                        detail={"created": len(created), "accepted": accepted},
                    )
            return UploadOut(
                units=len(units), assets_created=created, accepted=accepted, unchanged=unchanged
            )

        return retrying(store)

    # -- dead letters ----------------------------------------------------------------------
    def record_dead_letter(
        self, tenant: str, *, source: str, topic: str, error: str, payload: bytes
    ) -> None:
        """Keep a message that could not be used, with why (an excerpt only: it is untrusted)."""
        with session_scope() as session:
            session.add(
                DeadLetterRow(
                    tenant=tenant,
                    source=source,
                    topic=topic[:300],
                    error=error[:2_000],
                    payload_excerpt=payload[:EXCERPT_BYTES].decode("utf-8", errors="replace"),
                    payload_bytes=len(payload),
                )
            )

    def dead_letters(self, viewer: Principal, limit: int = 50) -> list[DeadLetterOut]:
        query = (
            select(DeadLetterRow)
            .where(DeadLetterRow.tenant == viewer.tenant)
            .order_by(DeadLetterRow.id.desc())
            .limit(limit)
        )
        with session_scope() as session:
            return [
                DeadLetterOut.model_validate(r, from_attributes=True)
                for r in session.scalars(query)
            ]

    # -- health and fleet --------------------------------------------------------------------
    def health(
        self, viewer: Principal, asset_id: str, ctx: AuditContext | None = None
    ) -> HealthOut:
        rul = self._rul_if_loaded()

        def estimate() -> HealthOut:
            with session_scope() as session:
                asset = _asset(session, viewer.tenant, asset_id)
                return self._fresh_health(session, [asset], ctx or _page_context(viewer), rul)[0]

        return retrying(estimate)

    def fleet(
        self,
        viewer: Principal,
        *,
        limit: int | None = None,
        order: FleetOrder = "risk",
        ctx: AuditContext | None = None,
    ) -> FleetOut:
        """The tenant's assets with their health, riskiest first (or by id)."""
        settings = get_settings()
        limit = settings.fleet_page_size if limit is None else limit
        query = (
            select(AssetRow)
            .where(AssetRow.tenant == viewer.tenant)
            .order_by(AssetRow.asset_id)
            .limit(settings.max_fleet_size)
        )
        rul = self._rul_if_loaded()

        def estimate() -> tuple[list[AssetRow], list[HealthOut]]:
            with session_scope() as session:
                assets = list(session.scalars(query))
                found = self._fresh_health(session, assets, ctx or _page_context(viewer), rul)
                return assets, found

        assets, healths = retrying(estimate)
        if order == "risk":
            healths.sort(key=_risk_order)
        return FleetOut(assets=healths[:limit], total=len(assets))

    def _fresh_health(
        self,
        session: Session,
        assets: Sequence[AssetRow],
        ctx: AuditContext,
        rul: tuple[RulModel, str] | None,
    ) -> list[HealthOut]:
        """Health of ``assets`` in order: stored estimates that are current, the stale turbofans
        estimated now in one batch (stored and recorded as predictions)."""
        pks = [a.id for a in assets]
        stored = (
            {
                row.asset_pk: row
                for row in session.scalars(select(HealthRow).where(HealthRow.asset_pk.in_(pks)))
            }
            if pks
            else {}
        )
        last = readings.last_cycles(session, [a.id for a in assets if a.kind == "turbofan"])
        version = rul[1] if rul is not None else None
        answers: dict[int, HealthOut] = {}
        stale: list[AssetRow] = []
        for asset in assets:
            row = stored.get(asset.id)
            if asset.kind == "machine_tool" or asset.id not in last:
                answers[asset.id] = HealthOut(**row.estimate) if row else unknown_health(asset)
            elif (
                row is not None
                and row.last_cycle == last[asset.id]
                and row.model_version == version
            ):
                answers[asset.id] = HealthOut(**row.estimate)
            else:
                stale.append(asset)
        if stale:
            for asset, health in zip(
                stale, self._estimate(session, stale, last, ctx, rul), strict=True
            ):
                answers[asset.id] = health
        return [answers[a.id] for a in assets]

    def _estimate(
        self,
        session: Session,
        assets: Sequence[AssetRow],
        last: dict[int, int],
        ctx: AuditContext,
        rul: tuple[RulModel, str] | None,
    ) -> list[HealthOut]:
        if rul is None:
            raise ModelUnavailable(f"no production model for {NAME}/{shipping.RUL}")
        model, version = rul
        settings = get_settings()
        started = time.perf_counter()
        found = readings.histories(session, [a.id for a in assets], settings.max_history_cycles)
        estimates = model.predict([found[a.id][1] for a in assets])
        latency_ms = (time.perf_counter() - started) * 1000.0 / len(assets)
        now = utcnow()
        healths = [
            turbofan_health(asset, last[asset.id], estimate, version, settings, now)
            for asset, estimate in zip(assets, estimates, strict=True)
        ]
        for asset, health in zip(assets, healths, strict=True):
            _store_health(session, asset.id, health)
        record_rows(
            session,
            [
                audit_row(
                    ctx,
                    digest=input_sha256({"asset_id": h.asset_id, "last_cycle": h.last_cycle}),
                    outcome=Outcome(output=h.model_dump(mode="json"), model_version=version),
                    latency_ms=latency_ms,
                )
                for h in healths
            ],
            model=shipping.RUL,
        )
        return healths

    def asset_history(self, viewer: Principal, asset_id: str) -> AssetHistory:
        """Readings, normalised sensors and the RUL estimate after every cycle (the trajectory
        the page draws), over the latest ``max_history_cycles``."""
        model, _ = self.rul_model()
        with session_scope() as session:
            asset = _turbofan(session, viewer.tenant, asset_id)
            cycles, values = readings.history(session, asset.id, get_settings().max_history_cycles)
        if len(cycles) == 0:
            return AssetHistory(
                asset_id=asset_id,
                cycles=[],
                readings=[],
                used_sensors=model.used_sensors,
                zscores=[],
                rul=[],
                rul_low=[],
                rul_high=[],
            )
        trajectory = model.predict([values[: i + 1] for i in range(len(cycles))])
        return AssetHistory(
            asset_id=asset_id,
            cycles=cycles.tolist(),
            readings=values.tolist(),
            used_sensors=model.used_sensors,
            zscores=np.asarray(model.sensor_zscores(values)).tolist(),
            rul=[e.rul for e in trajectory],
            rul_low=[e.rul_low for e in trajectory],
            rul_high=[e.rul_high for e in trajectory],
        )

    # -- machine tools -------------------------------------------------------------------------
    def score_machine(self, ctx: AuditContext, actor: Principal, body: MachineScoreIn) -> Any:
        """Failure risk of one machine-tool reading, recorded (and replayed on a retried
        ``request_id``); with an ``asset_id`` the answer becomes that machine's health."""
        loaded = self.failure_model()

        def compute(session: Session) -> Outcome:
            answer, version = self._score_machine(session, actor, body, loaded)
            return Outcome(
                output=answer.model_dump(mode="json"), model_version=version, model=shipping.FAILURE
            )

        return audited(ctx, payload=body, idempotency_key=body.request_id, compute=compute)

    def score_machine_as(self, viewer: Principal, reading: MachineReading) -> MachineScoreOut:
        """The what-if of the dashboard: scored and logged under the signed-in user, stored
        as nobody's health."""
        loaded = self.failure_model()
        with session_scope() as session:
            answer, version = self._score_machine(
                session, viewer, MachineScoreIn(**reading.model_dump()), loaded
            )
            record_action(
                session,
                viewer,
                domain=NAME,
                action="machine.score",
                target=f"{shipping.FAILURE}:{version}",
                detail={"failure_probability": answer.failure_probability},
            )
        return answer

    def _score_machine(
        self,
        session: Session,
        actor: Principal,
        body: MachineScoreIn,
        loaded: tuple[FailureModel, str],
    ) -> tuple[MachineScoreOut, str]:
        model, version = loaded
        asset = None
        if body.asset_id is not None:
            asset = _asset(session, actor.tenant, body.asset_id)
            if asset.kind != "machine_tool":
                raise Conflict(
                    f"asset {body.asset_id!r} is a {asset.kind}, not a machine_tool",
                    {"field": "asset_id", "kind": asset.kind},
                )
        reading = MachineReading(**body.model_dump(exclude={"request_id", "asset_id"}))
        [estimate] = model.score([reading])
        settings = get_settings()
        health = machine_health(body.asset_id or "", estimate, version, settings, utcnow())
        if asset is not None:
            _store_health(session, asset.id, health)
            outcomes.queue_reading(
                session,
                tenant=actor.tenant,
                asset_id=asset.asset_id,
                reading=reading,
                estimate=estimate,
                model_version=version,
            )
        answer = MachineScoreOut(
            failure_probability=estimate.failure_probability,
            decision=health.decision,  # type: ignore[arg-type]
            likely_failure_modes=estimate.likely_failure_modes,
            reasons=estimate.reasons,
            model_version=version,
        )
        return answer, version

    def record_outcome(self, actor: Principal, asset_id: str, body: OutcomeIn) -> OutcomeOut:
        """A maintenance outcome: the label of the machine's newest scored reading."""
        with session_scope() as session:
            asset = _asset(session, actor.tenant, asset_id)
            if asset.kind != "machine_tool":
                raise Conflict(
                    f"asset {asset_id!r} is a {asset.kind}: outcomes label machine tools",
                    {"field": "asset_id", "kind": asset.kind},
                )
            out = outcomes.record_outcome(session, actor, asset_id, body)
            record_action(
                session,
                actor,
                domain=NAME,
                action="machine.outcome",
                target=asset_id,
                detail={"label": out.label, "failure_modes": out.failure_modes},
            )
            return out

    # -- training and evaluation -------------------------------------------------------------
    def evaluate_rul(self, data_file: Path, truth_file: Path) -> dict[str, float]:
        from verticals.domains.manufacturing.model.rul_evaluation import evaluate_rul

        model, _ = self.rul_model()
        return evaluate_rul(model, data_file, truth_file)

    def evaluate_failure(self, data_file: Path, folds: int) -> dict[str, float]:
        """Out-of-fold figures of the shipped recipe (the model is refitted per fold)."""
        from verticals.domains.manufacturing.model.failure_training import cross_validate_failure

        return cross_validate_failure(data_file, folds=folds)


def _risk_order(health: HealthOut) -> tuple[float, bool, float, str]:
    """Riskiest first; risks within 0.1% of each other (a healthy fleet's are all near 0) by
    the low end of the RUL interval: the engine that may fail soonest comes first."""
    low = health.rul_low if health.rul_low is not None else math.inf
    return (-round(health.risk, 3), health.decision is None, low, health.asset_id)


def _loaded(session: Session, name: str, build: Any) -> tuple[Any, str] | None:
    try:
        payloads, version = shipping.load_production(session, name)
    except ModelUnavailable:
        return None
    return build(payloads), version.version


def _find_asset(session: Session, tenant: str, asset_id: str) -> AssetRow | None:
    return session.scalar(
        select(AssetRow).where(AssetRow.tenant == tenant, AssetRow.asset_id == asset_id)
    )


def _asset(session: Session, tenant: str, asset_id: str) -> AssetRow:
    asset = _find_asset(session, tenant, asset_id)
    if asset is None:
        raise NotFound(f"asset {asset_id!r} is not registered", {"asset_id": asset_id})
    return asset


def _turbofan(session: Session, tenant: str, asset_id: str) -> AssetRow:
    asset = _asset(session, tenant, asset_id)
    if asset.kind != "turbofan":
        raise Conflict(
            f"asset {asset_id!r} is a {asset.kind}: cycle readings are for turbofans",
            {"asset_id": asset_id, "kind": asset.kind},
        )
    return asset


def _same_asset(existing: AssetRow, body: AssetIn) -> None:
    differs = [
        field
        for field in ("kind", "name", "line")
        if getattr(existing, field) != getattr(body, field)
    ]
    if differs:
        raise Conflict(
            f"asset {body.asset_id!r} is already registered with another {', '.join(differs)}",
            {"asset_id": body.asset_id, "fields": differs},
        )


def _store_health(session: Session, asset_pk: int, health: HealthOut) -> None:
    row = session.get(HealthRow, asset_pk)
    if row is None:
        row = HealthRow(asset_pk=asset_pk)
        session.add(row)
    row.last_cycle = health.last_cycle
    row.model_version = health.model_version or ""
    row.estimate = health.model_dump(mode="json")
    row.updated_at = health.updated_at or utcnow()


def _page_context(viewer: Principal) -> AuditContext:
    """How a dashboard request is recorded: under the signed-in user."""
    return AuditContext(
        request_id=uuid.uuid4().hex,
        api_key_id=viewer.key_id,
        domain=NAME,
        route="page",
        user_id=viewer.user_id,
    )
