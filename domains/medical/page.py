"""The clinicians' Streamlit page: worklist, upload, image with window/level and heatmap overlay,
probabilities, confirm/correct, and the model cards.

Everything goes through :class:`~verticals.domains.medical.service.StudyService` (the same
workflow as the API, audited the same way). Stored arrays and model cards are cached; nothing
is trained or decoded from raw uploads on a rerun.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st
from verticals.core.audit import AuditContext
from verticals.core.errors import VerticalsError
from verticals.core.registry.cards import metrics_table

if TYPE_CHECKING:
    from verticals.core.auth import Principal
    from verticals.domains.medical.plugin import MedicalDomain
    from verticals.domains.medical.service import StudyService

AUTO = "auto (from the DICOM header)"
SELECTED = "medical_selected_study"
LEGEND_WIDTH = 320  # pixels of the heatmap's colour bar
DISCLAIMER = (
    "Decision support for trained clinicians, not a diagnosis. Models trained on 28×28 "
    "MedMNIST images; see the model cards for intended use and limits."
)


WRITE = "medical:write"


def _dashboard_context(action: str, viewer: Principal) -> AuditContext:
    return AuditContext(
        request_id=uuid.uuid4().hex,
        api_key_id=None,
        user_id=viewer.user_id,
        domain="medical",
        route=f"dashboard {action}",
        tenant=viewer.tenant,
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _stored_arrays(study_id: str, tenant: str, _service: StudyService) -> tuple[Any, Any]:
    """Modality values and Grad-CAM of a study (immutable once stored; ids are unique; the
    tenant is part of the cache key, so another tenant's viewer never gets them)."""
    return _service.display_values(study_id, tenant=tenant)


@st.cache_data(show_spinner=False, ttl=60)
def _model_cards(tasks: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    from verticals.core.db import session_scope
    from verticals.core.registry import production_version

    cards: dict[str, dict[str, Any]] = {}
    with session_scope() as session:
        for task in tasks:
            version = production_version(session, "medical", task)
            if version is not None:
                cards[task] = {
                    "version": version.version,
                    "card": version.card.model_dump(mode="json"),
                    "metrics": dict(version.metrics),
                }
    return cards


def render_page(domain: MedicalDomain, viewer: Principal) -> None:
    from verticals.domains.medical import model_api

    service = domain.service()
    tasks = sorted(model_api.tasks())
    st.title("Medical imaging")
    st.caption(DISCLAIMER)
    worklist, queue, upload, cards = st.tabs(["Worklist", "Review queue", "Upload", "Model cards"])
    with upload:
        if viewer.allows(WRITE):
            _render_upload(domain, service, tasks, viewer)
        else:
            st.info(f"Read only: the role {viewer.role!r} cannot upload studies.")
    with worklist:
        _render_worklist(service, viewer)
    with queue:
        _render_queue(service, viewer)
    with cards:
        _render_cards(tasks)


# --------------------------------------------------------------------------- review queue


def _render_queue(service: StudyService, viewer: Principal) -> None:
    """Core's labeling queue of every task: studies the models are least sure of first."""
    from verticals.core.labeling.widgets import render_labeling
    from verticals.domains.medical.queue import task_labels
    from verticals.domains.medical.schemas import ReviewIn

    labels = task_labels()

    def describe(item: Any) -> None:
        study = service.get(item.subject, tenant=viewer.tenant)
        st.markdown(f"**Study {study.study_id[:8]}** ({study.task}): {_decision_text(study)}")
        for warning in study.warnings:
            st.warning(warning)
        if st.button("Open in the worklist", key=f"open-{item.id}"):
            st.session_state[SELECTED] = study.study_id
            st.toast("Opened: see the Worklist tab.")

    def on_label(item: Any, label: str, note: str | None) -> None:
        service.review(item.subject, ReviewIn(label=label, comment=note), actor=viewer)

    render_labeling(
        "medical",
        viewer,
        labels=labels,
        can_label=viewer.allows(WRITE),
        on_label=on_label,
        describe=describe,
        key="medical-queue",
    )


# --------------------------------------------------------------------------- upload


def _analyse(
    service: StudyService, data: bytes, name: str, task: str | None, viewer: Principal
) -> None:
    try:
        with st.spinner("De-identifying and analysing…"):
            created = service.create(
                data, filename=name, task=task, ctx=_dashboard_context("POST /studies", viewer)
            )
    except VerticalsError as exc:
        st.error(f"Not analysed: {exc.message}")
        return
    st.session_state[SELECTED] = created.study_id
    message = f"Study {created.study_id[:8]} ({created.task}): {_decision_text(created)}"
    if created.in_scope:
        st.success(message + " — open it in the worklist.")
    else:
        st.warning(message + " — " + " ".join(created.warnings))


def _decision_text(study: Any) -> str:
    """The finding as decided (threshold and scope), never the arg-max of the probabilities."""
    if study.finding == "indeterminate":
        return "indeterminate (outside the model's scope; no finding claimed)"
    positive = next(f for f in study.findings if f.label == study.positive_label)
    return (
        f"{study.finding.replace('_', ' ')} (p({study.positive_label}) {positive.probability:.1%}, "
        f"threshold {study.threshold:.2f})"
    )


def _render_upload(
    domain: MedicalDomain, service: StudyService, tasks: list[str], viewer: Principal
) -> None:
    st.subheader("New study")
    st.write(
        "DICOM (any transfer syntax we decode), a zip of a DICOM series (the middle instance "
        "is analysed), or PNG/JPEG (choose the task). DICOM is de-identified (PS3.15 basic "
        "profile) before anything is stored."
    )
    choice = st.selectbox("Task", [AUTO, *tasks], key="medical_task")
    task = None if choice == AUTO else choice
    uploaded = st.file_uploader("Image file", key="medical_upload")
    if st.button("Analyse upload", disabled=uploaded is None, key="medical_analyse"):
        _analyse(service, uploaded.getvalue(), uploaded.name, task, viewer)

    demo = domain.demo_data()
    samples = sorted(demo.rglob("*.dcm")) if demo is not None and demo.is_dir() else []
    if samples:
        st.divider()
        st.caption("Demo samples: MedMNIST training images (CC BY 4.0) with synthetic headers.")
        sample = st.selectbox("Sample", [p.name for p in samples], key="medical_sample")
        if st.button("Analyse sample", key="medical_analyse_sample"):
            path = next(p for p in samples if p.name == sample)
            _analyse(service, path.read_bytes(), path.name, task, viewer)


# --------------------------------------------------------------------------- worklist


def _render_worklist(service: StudyService, viewer: Principal) -> None:
    import pandas as pd

    studies = service.list(limit=100, tenant=viewer.tenant)
    if not studies:
        st.info("No studies yet: upload one in the Upload tab.")
        return
    table = pd.DataFrame(
        [
            {
                "study": s.study_id[:8],
                "received": s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "task": s.task,
                "status": s.status,
                "model finding": s.finding,
                "p(positive)": round(s.probability, 3),
                "model": s.model_version,
            }
            for s in studies
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")
    ids = [s.study_id for s in studies]
    current = st.session_state.get(SELECTED)
    index = ids.index(current) if current in ids else 0
    chosen = st.selectbox(
        "Open study",
        ids,
        index=index,
        format_func=lambda i: (
            f"{i[:8]} · " + next(f"{s.task} · {s.status}" for s in studies if s.study_id == i)
        ),
        key="medical_open",
    )
    st.session_state[SELECTED] = chosen
    _render_study(service, chosen, viewer)


def _render_study(service: StudyService, study_id: str, viewer: Principal) -> None:
    from verticals.domains.medical.pixels import Window, apply_window

    try:
        study = service.get(study_id, tenant=viewer.tenant)
        values, cam = _stored_arrays(study_id, viewer.tenant, service)
    except VerticalsError as exc:
        st.error(exc.message)
        return
    left, right = st.columns([3, 2])
    with left:
        low, high = float(np.min(values)), float(np.max(values))
        span = max(high - low, 1.0)
        center = st.slider(
            "Window level (centre)",
            low - span,
            high + span,
            float(np.clip(study.window_center, low - span, high + span)),
            key=f"wl_{study_id}",
        )
        width = st.slider(
            "Window width",
            1.0,
            2.0 * span + 1.0,
            float(np.clip(study.window_width, 1.0, 2.0 * span + 1.0)),
            key=f"ww_{study_id}",
        )
        overlay = st.toggle("Grad-CAM overlay", value=True, key=f"ov_{study_id}")
        gray = apply_window(values, Window(center=center, width=width))
        st.image(_compose(gray, cam if overlay else None), clamp=True, width="stretch")
        if overlay:
            _render_legend(cam, study.positive_label)
        if study.notes:
            st.caption(" ".join(study.notes))
    with right:
        st.subheader(f"{study.task}: {study.finding.replace('_', ' ')}")
        st.caption(
            f"model {study.model_version} · threshold {study.threshold:.2f} · {study.status}"
        )
        for warning in study.warnings:
            st.warning(warning)
        for finding in study.findings:
            st.progress(finding.probability, text=f"{finding.label}: {finding.probability:.1%}")
        _render_review(service, study, viewer)
        fhir = service.fhir_report(study_id, tenant=viewer.tenant)
        st.download_button(
            "FHIR DiagnosticReport",
            json.dumps(fhir, indent=2),
            f"{study_id}.fhir.json",
            mime="application/fhir+json",
            key=f"fhir_{study_id}",
        )


def _render_legend(cam: np.ndarray, label: str) -> None:
    """The heatmap's colour bar and what its colours mean (see ``overlay``'s docstring)."""
    from verticals.domains.medical.overlay import legend_strip, legend_text

    st.image(legend_strip(LEGEND_WIDTH))
    st.caption(legend_text(cam, label))


def _compose(gray: np.ndarray, cam: np.ndarray | None) -> np.ndarray:
    if cam is None:
        return gray
    from verticals.domains.medical.overlay import blend
    from verticals.domains.medical.runtime import resize

    height, width = gray.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    full = np.zeros_like(gray, dtype=np.float32)
    full[top : top + side, left : left + side] = resize(cam.astype(np.float32), side)
    return blend(gray, full)


def _render_review(service: StudyService, study: Any, viewer: Principal) -> None:
    from verticals.domains.medical.schemas import ReviewIn

    labels = [f.label for f in study.findings]
    if study.review is not None:
        verdict = "confirmed" if study.review.agrees else f"corrected to {study.review.label}"
        st.info(f"Reviewed: {verdict}.")
    if not viewer.allows(WRITE):
        return
    with st.form(f"review_{study.study_id}"):
        label = st.radio(
            "Clinician's finding",
            labels,
            index=labels.index(study.predicted_label) if study.predicted_label in labels else 0,
        )
        comment = st.text_area("Comment (no patient identifiers)", max_chars=2000)
        if st.form_submit_button(f"Confirm / correct as {viewer.name}"):
            try:
                saved = service.review(
                    study.study_id, ReviewIn(label=label, comment=comment or None), actor=viewer
                )
            except VerticalsError as exc:
                st.error(exc.message)
            else:
                st.success("Confirmed." if saved.agrees else f"Corrected to {saved.label}.")


# --------------------------------------------------------------------------- model cards


def _render_cards(tasks: list[str]) -> None:
    try:
        cards = _model_cards(tuple(tasks))
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        st.warning(f"Model cards unavailable: {type(exc).__name__}")
        return
    for task in tasks:
        entry = cards.get(task)
        st.subheader(task)
        if entry is None:
            st.warning("No production model registered.")
            continue
        card = entry["card"]
        st.caption(f"version {entry['version']}")
        st.markdown(f"**Intended use.** {card.get('intended_use') or '—'}")
        st.markdown(f"**Limitations.** {card.get('limitations') or '—'}")
        st.markdown(f"**Training data.** {card.get('training_data') or '—'}")
        metrics = entry["metrics"] or card.get("metrics") or {}
        if metrics:
            st.table(metrics_table(metrics))
        if card.get("reproduce_command"):
            st.code(card["reproduce_command"], language="bash")
