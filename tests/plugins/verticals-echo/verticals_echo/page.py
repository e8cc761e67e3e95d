"""The echo page of the dashboard: calls the service layer, never the router.

Each action is shown only to a viewer whose role allows it, and is logged under that viewer.
"""

from __future__ import annotations

from verticals.core.auth import Principal
from verticals.core.errors import VerticalsError

from verticals_echo import NAME
from verticals_echo.service import EchoService


def render_page(service: EchoService, viewer: Principal, title: str) -> None:
    import streamlit as st

    st.header(title)
    st.write("Scores three numbers with a linear model, and keeps notes.")
    if viewer.allows(f"{NAME}:score"):
        with st.form(f"{NAME}_score"):
            columns = st.columns(3)
            values = [
                column.number_input(f"x{i + 1}", value=0.0, key=f"{NAME}_x{i + 1}")
                for i, column in enumerate(columns)
            ]
            if st.form_submit_button("Score"):
                try:
                    st.metric("score", f"{service.score_as(viewer, values):.4f}")
                except VerticalsError as exc:
                    st.error(exc.message)
        st.caption(f"model version {service.model_version}")
    if viewer.allows(f"{NAME}:write"):
        with st.form(f"{NAME}_note", clear_on_submit=True):
            text = st.text_input("New note", max_chars=200)
            if st.form_submit_button("Add note") and text.strip():
                service.add_note(viewer, text.strip())
    if viewer.allows(f"{NAME}:read"):
        notes = service.list_notes(viewer)
        st.subheader("Notes")
        if notes:
            st.dataframe([n.model_dump() for n in notes], hide_index=True)
        else:
            st.caption("No notes yet.")
