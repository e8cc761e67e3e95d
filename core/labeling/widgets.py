"""The labeling widget every domain page embeds: the queue with why each item was chosen, the
chosen item (the domain draws its details), buttons for the labels, assignment, and the
label-issue scan. One component, so a clinician, an analyst and a planner see the same queue.

A domain whose labels have side effects (finance's card state, medical's study status) passes
``on_label``; otherwise the label is stored in core's queue directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs installed
from verticals.core.db import session_scope
from verticals.core.labeling import issues, store
from verticals.core.labeling.router import LabelItemOut

if TYPE_CHECKING:
    from verticals.core.auth import Principal

OnLabel = Callable[[LabelItemOut, str, str | None], None]


def _st() -> Any:
    import streamlit as st

    return st


def open_items(
    domain: str, viewer: Principal, *, model: str | None = None, limit: int = 50
) -> list[LabelItemOut]:
    with session_scope() as session:
        rows = store.queue(
            session,
            tenant=viewer.tenant,
            domain=domain,
            model=model,
            limit=limit,
            person=viewer.name,
        )
        return [LabelItemOut.of(row) for row in rows]


def queue_frame(items: Sequence[LabelItemOut]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "item": i.id,
                "subject": i.subject,
                "model": i.model,
                "score": None if i.score is None else round(i.score, 4),
                "priority": round(i.priority, 4),
                "why": ("second opinion: " if i.second_review else "") + (i.why or ""),
                "assigned to": i.assigned_to or "",
                "queued": i.created_at,
            }
            for i in items
        ]
    )


def _annotate(domain: str, viewer: Principal) -> OnLabel:
    def save(item: LabelItemOut, label: str, note: str | None) -> None:
        with session_scope() as session:
            row = store.get_item(session, item.id, tenant=viewer.tenant)
            store.annotate_as(session, row, label, viewer, note=note)

    return save


def render_labeling(
    domain: str,
    viewer: Principal,
    *,
    labels: Mapping[str, Sequence[str]],
    can_label: bool,
    on_label: OnLabel | None = None,
    describe: Callable[[LabelItemOut], None] | None = None,
    button_text: Mapping[str, str] | None = None,
    key: str = "labels",
) -> LabelItemOut | None:
    """Draw the queue of ``domain``'s models named in ``labels`` (model -> its labels, the
    positive one first); return the item the viewer chose (None when the queue is empty).
    ``button_text`` words a label's button in the domain's language (e.g. genuine: Legit)."""
    st = _st()
    with session_scope() as session:
        counts = store.counts(session, tenant=viewer.tenant, domain=domain)
    cols = st.columns(4)
    cols[0].metric("waiting", counts["pending"] + counts["assigned"])
    cols[1].metric("second opinions", counts["second_review"])
    cols[2].metric("labelled", counts["labelled"])
    cols[3].metric("closed", counts["closed"])
    models = list(labels)
    model = models[0] if len(models) == 1 else st.selectbox("model", models, key=f"{key}-model")
    limit = st.number_input(
        "items", min_value=10, max_value=500, value=50, step=10, key=f"{key}-limit"
    )
    items = open_items(domain, viewer, model=model, limit=int(limit))
    if not items:
        st.info("Nothing waits for a label: new predictions are queued as they are served.")
        _render_scan(domain, viewer, model, labels, can_label, key)
        return None
    st.dataframe(queue_frame(items), hide_index=True, width="stretch")
    chosen_id = st.selectbox(
        "item",
        [i.id for i in items],
        format_func=lambda i: next(f"{x.subject} — {x.why or ''}" for x in items if x.id == i),
        key=f"{key}-item",
    )
    item = next(i for i in items if i.id == chosen_id)
    if describe is not None:
        describe(item)
    if can_label:
        st.caption(f"labelling as **{viewer.name}**")
        if item.assigned_to is None and st.button("assign to me", key=f"{key}-assign-{item.id}"):
            with session_scope() as session:
                store.assign(
                    session, store.get_item(session, item.id, tenant=viewer.tenant), viewer.name
                )
            st.rerun()
        note = st.text_input("note (no patient or card identifiers)", key=f"{key}-note-{item.id}")
        save = on_label or _annotate(domain, viewer)
        for column, label in zip(
            st.columns(len(labels[item.model])), labels[item.model], strict=True
        ):
            text = (button_text or {}).get(label, label)
            if column.button(text, key=f"{key}-{label}-{item.id}", width="stretch"):
                save(item, label, note or None)
                st.toast(f"{item.subject} labelled {label}")
                st.rerun()
    else:
        st.caption(f"read only: the role {viewer.role!r} cannot label")
    _render_scan(domain, viewer, model, labels, can_label, key)
    return item


def _render_scan(
    domain: str,
    viewer: Principal,
    model: str,
    labels: Mapping[str, Sequence[str]],
    can_label: bool,
    key: str,
) -> None:
    st = _st()
    if not can_label:
        return
    if st.button(
        "find likely label issues",
        key=f"{key}-scan",
        help="labels the model's scores strongly disagree with go to a second reviewer",
    ):
        with session_scope() as session:
            flagged = issues.flag_label_issues(
                session,
                domain=domain,
                model=model,
                positive=labels[model][0],
                tenant=viewer.tenant,
            )
            n = len(flagged)
        st.toast(f"{n} label(s) sent for a second opinion" if n else "no likely label issues")
        if n:
            st.rerun()
