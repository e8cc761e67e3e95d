"""The analysts' Streamlit page: review queue, history, model card, threshold what-if.

Calls the domain's services directly; heavy reads are cached; nothing is trained here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from verticals.core.auth import Principal
    from verticals.domains.finance.plugin import FinanceDomain

REVIEW = "finance:review"


def _st() -> Any:
    import streamlit as st

    return st


def _cached_card() -> dict[str, Any]:
    st = _st()

    @st.cache_data(ttl=60, show_spinner=False)
    def load() -> dict[str, Any]:
        from verticals.domains.finance.model.production import (
            ensure_production_model,
            production_entry,
        )

        ensure_production_model()
        entry = production_entry()
        return {
            "version": entry.version,
            "card": entry.card.model_dump(mode="json"),
            "sha256": entry.sha256,
            "created_at": str(entry.created_at),
        }

    return load()


def _cached_whatif() -> tuple[pd.DataFrame, pd.DataFrame]:
    st = _st()

    @st.cache_data(show_spinner="loading validation scores")
    def load() -> tuple[pd.DataFrame, pd.DataFrame]:
        from verticals.domains.finance.model.whatif import pr_curve
        from verticals.shared_models.finance import WHATIF_FILE

        scores = pd.read_parquet(WHATIF_FILE)
        return scores, pr_curve(scores)

    return load()


def _reasons_text(reasons: list[Any]) -> str:
    return "; ".join(r["phrase"] if isinstance(r, dict) else r.phrase for r in reasons)


def _history_frame(items: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "transaction": t.transaction_id,
                "time": t.tx_datetime,
                "amount": t.amount,
                "risk": round(t.fraud_probability, 4),
                "decision": t.decision,
                "label": t.label,
                "customer": t.customer_id,
                "terminal": t.terminal_id,
            }
            for t in items
        ]
    )


def render_queue(viewer: Principal) -> None:
    """Core's labeling queue of the fraud model, with the transaction behind each item."""
    from verticals.core.labeling.widgets import render_labeling
    from verticals.domains.finance import service
    from verticals.domains.finance.schemas import LabelIn
    from verticals.domains.finance.settings import MODEL_NAME

    st = _st()

    def describe(item: Any) -> None:
        tx = service.get_transaction(item.subject, tenant=viewer.tenant)
        st.markdown(
            f"**{tx.transaction_id}** — risk **{tx.fraud_probability:.1%}**, "
            f"{tx.decision}, amount {tx.amount:,.2f}"
        )
        for reason in tx.reasons:
            st.markdown(f"- {reason.phrase} (contribution {reason.contribution:+.2f})")
        left, right = st.columns(2)
        left.caption("customer's recent transactions")
        left.dataframe(
            _history_frame(
                service.recent_history(tenant=viewer.tenant, customer_id=tx.customer_id)
            ),
            hide_index=True,
        )
        right.caption("terminal's recent transactions")
        right.dataframe(
            _history_frame(
                service.recent_history(tenant=viewer.tenant, terminal_id=tx.terminal_id)
            ),
            hide_index=True,
        )

    def on_label(item: Any, label: str, note: str | None) -> None:
        verdict = LabelIn(is_fraud=label == "fraud", note=note)
        service.label_transaction(item.subject, verdict, actor=viewer)

    render_labeling(
        "finance",
        viewer,
        labels={MODEL_NAME: ("fraud", "genuine")},
        can_label=viewer.allows(REVIEW),
        on_label=on_label,
        describe=describe,
        button_text={"fraud": "Fraud", "genuine": "Legit"},
        key="finance-queue",
    )


def render_model() -> None:
    st = _st()
    info = _cached_card()
    card = info["card"]
    st.subheader(f"{card['name']} {info['version']}")
    st.write(card["description"])
    metrics = pd.DataFrame(sorted(card["metrics"].items()), columns=["metric", "value"])
    st.dataframe(metrics, hide_index=True)
    st.caption(f"training data: {card['training_data']}")
    st.caption(f"evaluation: {card['evaluation_data']}")
    st.code(card["reproduce_command"], language="bash")
    with st.expander("full model card"):
        st.json(card)


def render_whatif() -> None:
    import matplotlib.pyplot as plt
    from verticals.domains.finance.model.whatif import at_threshold
    from verticals.domains.finance.settings import decision_config

    st = _st()
    scores, curve = _cached_whatif()
    costs = decision_config()
    threshold = st.slider("alert threshold (probability)", 0.0, 1.0, 0.5, 0.01)
    out = at_threshold(scores, threshold, costs)
    a, b, c, d = st.columns(4)
    a.metric("alerts / day", f"{out.alerts_per_day:,.1f}")
    b.metric("precision", f"{out.precision:.1%}" if out.precision == out.precision else "n/a")
    c.metric("recall", f"{out.recall:.1%}")
    d.metric("cost / day", f"{out.cost_per_day:,.0f}")
    st.caption(
        f"validation window; cost = missed fraud amount x {costs.missed_fraud_cost_ratio:g} "
        f"+ {costs.review_cost:g} per alert"
    )
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curve["recall"], curve["precision"], lw=1.5)
    if out.precision == out.precision:
        ax.scatter([out.recall], [out.precision], color="red", zorder=3, label="threshold")
        ax.legend()
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    st.pyplot(fig, clear_figure=True)


def render(domain: FinanceDomain, viewer: Principal) -> None:
    st = _st()
    st.title(domain.title)
    queue, model, whatif = st.tabs(["Review queue", "Model", "Threshold what-if"])
    with queue:
        render_queue(viewer)
    with model:
        render_model()
    with whatif:
        render_whatif()
