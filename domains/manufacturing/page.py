"""The maintenance planners' page: the fleet ranked by risk, one engine's trends and RUL
trajectory, the machine-tool what-if, and the model cards.

It calls the service layer, never the router; each action shows only to a role that allows
it and is logged under the signed-in viewer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from verticals.core.auth import Principal
from verticals.core.errors import VerticalsError
from verticals.core.registry.cards import metrics_table
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model.failure import MachineReading
from verticals.domains.manufacturing.schemas import HealthOut
from verticals.domains.manufacturing.service import ManufacturingService
from verticals.domains.manufacturing.settings import get_settings

TABLE_ROWS = 500  # rows a table shows; the ranking covers the whole fleet
ANOMALY_Z = 3.0  # |z| above this (per regime-normalised sensor) marks an anomalous stretch
BADGE = {
    "replace": ("replace", "red"),
    "stop": ("stop", "red"),
    "inspect": ("inspect", "orange"),
    "run": ("run", "green"),
    "ok": ("ok", "green"),
}


def render_page(service: ManufacturingService, viewer: Principal, title: str) -> None:
    import streamlit as st

    st.header(title)
    st.caption(
        "Remaining useful life of turbofans with 90% intervals, failure risk of machine "
        "tools; decisions weigh a planned visit against an unplanned failure."
    )
    fleet_tab, asset_tab, machine_tab, outcome_tab, cards_tab = st.tabs(
        ["Fleet", "Engine", "Machine tools", "Outcomes", "Model cards"]
    )
    try:
        with fleet_tab:
            assets = _render_fleet(service, viewer)  # once per run, shared by the tabs
        with asset_tab:
            _render_engine(service, viewer, assets)
        with machine_tab:
            _render_machines(service, viewer, assets)
        with outcome_tab:
            _render_outcomes(viewer)
        with cards_tab:
            _render_cards(service)
    except VerticalsError as exc:
        st.error(exc.message)


def _render_outcomes(viewer: Principal) -> None:
    """Core's labeling queue of the failure model: scored machine readings, the model's least
    certain first; a planner records what happened (or POST /assets/{id}/outcome)."""
    import streamlit as st
    from verticals.core.labeling.widgets import render_labeling
    from verticals.domains.manufacturing import NAME, outcomes
    from verticals.domains.manufacturing.model.shipping import FAILURE

    def describe(item: Any) -> None:
        asset, _, scored = item.subject.partition("@")
        risk = "—" if item.score is None else f"{item.score:.1%}"
        st.markdown(f"**{asset}**, reading scored {scored}: failure risk {risk}")

    render_labeling(
        NAME,
        viewer,
        labels={FAILURE: outcomes.LABELS},
        can_label=viewer.allows(f"{NAME}:write"),
        describe=describe,
        button_text={outcomes.FAILED: "Failed", outcomes.RAN_FINE: "Ran fine"},
        key="manufacturing-outcomes",
    )


def _fleet_frame(assets: list[HealthOut]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "asset": h.asset_id,
                "kind": h.kind,
                "decision": h.decision or "—",
                "risk": h.risk,
                "RUL": h.rul,
                "RUL low": h.rul_low,
                "RUL high": h.rul_high,
                "last cycle": h.last_cycle,
                "top sensors": ", ".join(h.top_sensors[:3]),
                "warnings": " · ".join(h.warnings),
            }
            for h in assets
        ]
    )


def _render_fleet(service: ManufacturingService, viewer: Principal) -> list[HealthOut]:
    """The fleet tab (after an upload, if any); the tenant's assets, riskiest first."""
    import altair as alt
    import streamlit as st

    if viewer.allows(f"{NAME}:write"):
        with st.expander("Upload C-MAPSS readings"):
            upload = st.file_uploader("test_FD00x.txt or a plant export", key=f"{NAME}_upload")
            if upload is not None and st.button("Store readings", key=f"{NAME}_store"):
                result = service.upload_cmapss(viewer, upload.getvalue())
                st.success(
                    f"{result.units} units: {result.accepted} cycles stored, "
                    f"{result.unchanged} already there, {len(result.assets_created)} new assets"
                )
    fleet = service.fleet(viewer, limit=get_settings().max_fleet_size)
    if not fleet.assets:
        st.info("No assets yet. Upload readings, or register assets through the API.")
        return []
    counts = pd.Series([h.decision or "no data" for h in fleet.assets]).value_counts()
    columns = st.columns(max(1, len(counts)))
    for column, (decision, count) in zip(columns, counts.items(), strict=False):
        column.metric(str(decision), int(count))
    frame = _fleet_frame(fleet.assets[:TABLE_ROWS])
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "risk": st.column_config.ProgressColumn("risk", min_value=0.0, max_value=1.0),
            "RUL": st.column_config.NumberColumn(format="%.0f"),
            "RUL low": st.column_config.NumberColumn(format="%.0f"),
            "RUL high": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    engines = frame[frame["RUL"].notna()].head(40)
    if not engines.empty:
        base = alt.Chart(engines).encode(y=alt.Y("asset:N", sort=None, title=None))
        bars = base.mark_rule(strokeWidth=3).encode(
            x=alt.X("RUL low:Q", title="remaining useful life (cycles), 90% interval"),
            x2="RUL high:Q",
            color=alt.Color(
                "decision:N",
                scale=alt.Scale(
                    domain=["replace", "inspect", "run"], range=["#d62728", "#ff7f0e", "#2ca02c"]
                ),
            ),
        )
        st.altair_chart(bars + base.mark_point(filled=True, color="black").encode(x="RUL:Q"))
    st.caption(f"{fleet.total} assets; riskiest first.")
    letters = service.dead_letters(viewer, limit=20)
    if letters:
        with st.expander(f"Dead letters: {len(letters)} recent messages ingestion could not use"):
            st.dataframe(
                pd.DataFrame(
                    [d.model_dump(include={"received_at", "topic", "error"}) for d in letters]
                ),
                hide_index=True,
            )
    return fleet.assets


def _render_engine(
    service: ManufacturingService, viewer: Principal, assets: list[HealthOut]
) -> None:
    import altair as alt
    import streamlit as st

    turbofans = {h.asset_id: h for h in assets if h.kind == "turbofan"}  # riskiest first
    if not turbofans:
        st.info("No turbofans yet.")
        return
    asset_id = st.selectbox("Engine (riskiest first)", list(turbofans), key=f"{NAME}_engine")
    health = turbofans[asset_id]
    _render_recommendation(health)
    history = service.asset_history(viewer, asset_id)
    if not history.cycles:
        return
    trajectory = pd.DataFrame(
        {
            "cycle": history.cycles,
            "RUL": history.rul,
            "low": history.rul_low,
            "high": history.rul_high,
        }
    )
    band = alt.Chart(trajectory).mark_area(opacity=0.25).encode(x="cycle:Q", y="low:Q", y2="high:Q")
    line = (
        alt.Chart(trajectory)
        .mark_line()
        .encode(x="cycle:Q", y=alt.Y("RUL:Q", title="estimated RUL (cycles)"))
    )
    st.subheader("RUL over the engine's life")
    st.altair_chart(band + line)
    st.subheader("Sensor trends (normalised; anomalous stretches marked)")
    shown = [s for s in health.top_sensors if s in history.used_sensors] or history.used_sensors[:4]
    chosen = st.multiselect(
        "sensors", history.used_sensors, default=shown[:4], key=f"{NAME}_sensors"
    )
    if chosen:
        index = [history.used_sensors.index(s) for s in chosen]
        z = pd.DataFrame(
            [[row[i] for i in index] for row in history.zscores], columns=chosen
        ).assign(cycle=history.cycles)
        long = z.melt("cycle", var_name="sensor", value_name="z")
        long["anomalous"] = long["z"].abs() > ANOMALY_Z
        lines = alt.Chart(long).mark_line().encode(x="cycle:Q", y="z:Q", color="sensor:N")
        marks = (
            alt.Chart(long[long["anomalous"]])
            .mark_point(color="red", size=40)
            .encode(x="cycle:Q", y="z:Q", tooltip=["sensor", "cycle", "z"])
        )
        st.altair_chart(lines + marks)


def _render_recommendation(health: HealthOut) -> None:
    import streamlit as st

    if health.decision is None:
        st.info(" ".join(health.warnings))
        return
    label, color = BADGE[health.decision]
    st.badge(label.upper(), color=color)
    left, middle, right = st.columns(3)
    if health.rul is not None:
        left.metric("RUL (cycles)", f"{health.rul:.0f}")
        middle.metric(
            f"{health.interval_level:.0%} interval", f"{health.rul_low:.0f} – {health.rul_high:.0f}"
        )
    if health.failure_probability is not None:
        right.metric("P(failure before a visit)", f"{health.failure_probability:.1%}")
    if health.top_sensors:
        st.caption(f"top contributing sensors: {', '.join(health.top_sensors)}")
    for warning in health.warnings:
        st.warning(warning)


def _render_machines(
    service: ManufacturingService, viewer: Principal, assets: list[HealthOut]
) -> None:
    import streamlit as st

    if viewer.allows(f"{NAME}:write"):
        st.subheader("Failure-risk what-if")
        left, right = st.columns(2)
        values: dict[str, Any] = {
            "type": left.selectbox("product quality", ["L", "M", "H"], key=f"{NAME}_type"),
            "air_temperature_k": left.slider("air temperature [K]", 295.0, 305.0, 300.0, 0.1),
            "process_temperature_k": left.slider(
                "process temperature [K]", 305.0, 314.0, 310.0, 0.1
            ),
            "rotational_speed_rpm": right.slider("rotational speed [rpm]", 1150, 2900, 1500, 10),
            "torque_nm": right.slider("torque [Nm]", 3.0, 80.0, 40.0, 0.5),
            "tool_wear_min": right.slider("tool wear [min]", 0, 260, 100, 1),
        }
        if st.button("Score", key=f"{NAME}_score"):
            answer = service.score_machine_as(viewer, MachineReading(**values))
            label, color = BADGE[answer.decision]
            st.badge(label.upper(), color=color)
            st.metric("failure probability", f"{answer.failure_probability:.1%}")
            for mode in answer.likely_failure_modes:
                st.write(f"**{mode.name}** ({mode.probability:.0%}): {mode.reason}")
            st.dataframe(pd.DataFrame([r.model_dump() for r in answer.reasons]), hide_index=True)
    machines = [h for h in assets if h.kind == "machine_tool"][:TABLE_ROWS]
    if machines:
        st.subheader("Machine tools")
        st.dataframe(
            _fleet_frame(machines).drop(columns=["RUL", "RUL low", "RUL high", "last cycle"]),
            hide_index=True,
        )


def _render_cards(service: ManufacturingService) -> None:
    import streamlit as st

    cards = service.model_cards()
    if not cards:
        st.warning("No production model registered.")
    for name, (version, card) in cards.items():
        st.subheader(f"{name} {version}")
        st.write(card.description)
        st.markdown(f"**Intended use.** {card.intended_use}")
        st.markdown(f"**Limitations.** {card.limitations}")
        st.caption(f"training data: {card.training_data}")
        st.caption(f"evaluation: {card.evaluation_data}")
        st.table(metrics_table(card.metrics))
        st.code(card.reproduce_command, language="bash")
