"""Rich progress bar for epochs (disabled on non-zero ranks and in quiet runs)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from verticals.core.training.config import EpochMetrics


class EpochProgress:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(f"epoch {epoch}/{epochs}", total=batches, loss=0.0)

    def advance(self, loss: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, loss=loss)

    def end_epoch(self, record: EpochMetrics) -> None:
        if self._progress is None:
            return
        shown = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items())
        star = " *" if record.is_best else ""
        self._progress.console.print(
            f"epoch {record.epoch}/{record.epochs} ({record.seconds:.1f}s): {shown}{star}"
        )
