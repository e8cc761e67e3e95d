"""``verticals label ...``: labeling commands. ``simulate`` runs the active-learning benchmark
on a domain's learner (:meth:`verticals.core.plugins.Domain.labeling_learner`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(soft_wrap=True)  # one line per figure, whatever the terminal width


def _ints(text: str, what: str) -> tuple[int, ...]:
    from verticals.core.errors import InvalidInput

    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be comma-separated integers, got {text!r}") from None


def _strategy_options(name: str, warm_start: int, measure: str) -> dict[str, Any]:
    if name == "hybrid":
        return {"warm_start": warm_start, "measure": measure}
    if name == "uncertainty":
        return {"measure": measure}
    return {}


def simulate_command(
    domain: Annotated[str, typer.Argument(help="a domain that offers a labeling learner")],
    strategy: Annotated[
        list[str],
        typer.Option(
            "--strategy",
            help="uncertainty|diversity|cost|random|hybrid; repeat it or give a comma list",
        ),
    ],
    task: Annotated[str | None, typer.Option("--task", help="the domain's model/task")] = None,
    budgets: Annotated[
        str, typer.Option("--budgets", help="ascending label budgets, the seed set included")
    ] = "100,200,400,800",
    seeds: Annotated[int, typer.Option("--seeds", help="repetitions (seeds 0..n-1)")] = 3,
    initial: Annotated[int, typer.Option("--initial", help="random seed-set size")] = 20,
    step: Annotated[
        int | None, typer.Option("--step", help="labels per batch between retrains")
    ] = None,
    warm_start: Annotated[
        int, typer.Option("--warm-start", help="hybrid: random labels before uncertainty")
    ] = 200,
    measure: Annotated[
        str, typer.Option("--measure", help="uncertainty/hybrid: entropy or margin")
    ] = "entropy",
    data: Annotated[Path | None, typer.Option("--data", help="the pool's data file")] = None,
    eval_data: Annotated[
        Path | None, typer.Option("--eval-data", help="evaluation data (domain default if unset)")
    ] = None,
    full_data: Annotated[
        bool, typer.Option("--full-data/--no-full-data", help="also train on the whole pool")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary as the last line")] = False,
) -> None:
    """Pool-based active learning: labels revealed on request, retrained at each budget, the
    metric on the evaluation data per strategy and budget (mean ± sd over seeds)."""
    from verticals.core.errors import InvalidInput
    from verticals.core.labeling.simulate import SimulationConfig, simulate
    from verticals.core.labeling.strategies import get_strategy
    from verticals.core.plugins import discover

    names = [n.strip() for item in strategy for n in item.split(",") if n.strip()]
    chosen = [get_strategy(n, **_strategy_options(n, warm_start, measure)) for n in names]
    config = SimulationConfig(
        budgets=_ints(budgets, "--budgets"), seeds=seeds, initial=initial, step=step
    )
    learner = discover().get(domain).labeling_learner(task, data, eval_data)
    if learner is None:
        raise InvalidInput(f"domain {domain!r} offers no labeling learner")
    console.print(learner.describe())
    result = simulate(learner, chosen, config, log=console.print, full_data=full_data)
    metric = result.metric
    for name in dict.fromkeys(r.strategy for r in result.runs):
        for row in result.summary(name):
            extra = ""
            if metric != "roc_auc" and "roc_auc_mean" in row:
                extra = f"  (roc_auc {row['roc_auc_mean']:.4f} ± {row['roc_auc_sd']:.4f})"
            console.print(
                f"{name:<12} budget {int(row['budget']):>6}: {metric} "
                f"{row[f'{metric}_mean']:.4f} ± {row[f'{metric}_sd']:.4f}{extra}, "
                f"{row['positive_labels_mean']:.0f} positive labels"
            )
    if result.full_data:
        console.print(
            f"full data ({learner.n_pool} labels): {metric} {result.full_data[metric]:.4f}"
        )
    console.print(
        f"{config.seeds} seeds; each starts every strategy from the same {config.initial} "
        f"random labels (stratified); {result.seconds:.0f} s"
    )
    if as_json:
        print(json.dumps(result.to_json()))


def queue_command(
    domain: Annotated[str, typer.Argument(help="the domain whose queue to show")],
    model: Annotated[str | None, typer.Option("--model", help="one model's items")] = None,
    tenant: Annotated[str, typer.Option("--tenant", help="whose queue")] = "default",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary as the last line")] = False,
) -> None:
    """The open items of a domain's labeling queue, most useful first, with why each was chosen."""
    from verticals.core.db import session_scope
    from verticals.core.labeling import store
    from verticals.core.labeling.router import LabelItemOut

    with session_scope() as session:
        counts = store.counts(session, tenant=tenant, domain=domain)
        rows = store.queue(session, tenant=tenant, domain=domain, model=model, limit=limit)
        items = [LabelItemOut.of(row) for row in rows]
    for item in items:
        flag = " [second opinion]" if item.second_review else ""
        console.print(f"{item.id:>7} {item.model}/{item.subject}{flag}: {item.why or ''}")
    console.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    if as_json:
        print(
            json.dumps(
                {
                    "domain": domain,
                    "counts": counts,
                    "items": [i.model_dump(mode="json") for i in items],
                }
            )
        )


def issues_command(
    domain: Annotated[str, typer.Argument(help="the domain whose labels to check")],
    model: Annotated[str, typer.Option("--model", help="the model (a binary classifier)")],
    positive: Annotated[str, typer.Option("--positive", help="its positive label, e.g. fraud")],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="one tenant's labels (default: all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON summary as the last line")] = False,
) -> None:
    """Send labels the model's out-of-sample scores strongly disagree with to a second reviewer
    (confident learning)."""
    from verticals.core.db import session_scope
    from verticals.core.labeling.issues import flag_label_issues

    with session_scope() as session:
        flagged = flag_label_issues(
            session, domain=domain, model=model, positive=positive, tenant=tenant
        )
        found = [
            {"id": row.id, "subject": row.subject, "label": row.label, "issue": row.issue_score}
            for row in flagged
        ]
    for row in found:
        console.print(
            f"{row['id']:>7} {row['subject']}: labelled {row['label']!r}, "
            f"issue score {row['issue']:.3f}"
        )
    console.print(f"{len(found)} label(s) sent for a second opinion")
    if as_json:
        print(json.dumps({"domain": domain, "model": model, "flagged": found}))


def label_app() -> typer.Typer:
    app = typer.Typer(help="Labeling: the annotation queue and active learning.")
    app.command("simulate")(simulate_command)
    app.command("queue")(queue_command)
    app.command("issues")(issues_command)
    return app
