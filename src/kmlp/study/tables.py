"""A table of the study: which experiment's metric goes in which cell."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..nn.metrics import FINAL_METRICS


class TableSpecError(ValueError):
    """A table spec that breaks rules: one line per broken rule in ``problems``."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _names(value) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class TableSpec:
    """A grid: a row per label, a column per name, one experiment per cell (the config's
    ``tables`` entry). A column shows ``metric``, or its own entry of ``column_metrics``
    (e.g. test accuracy beside validation accuracy of the same runs)."""

    metric: str
    columns: tuple[str, ...]
    rows: dict = field(default_factory=dict)  # row label -> tuple of experiments, one per column
    caption: str = ""
    row_label: str = ""
    column_metrics: tuple[str, ...] | None = None
    label: str = ""

    @classmethod
    def from_dict(cls, spec) -> TableSpec:
        """The spec of a mapping such as a config entry; :class:`TableSpecError` lists
        every broken rule."""
        problems = cls.check(spec)
        if problems:
            raise TableSpecError(problems)
        metrics = spec.get("column_metrics")
        return cls(
            metric=spec["metric"],
            columns=tuple(spec["columns"]),
            rows={str(label): tuple(cells) for label, cells in spec["rows"].items()},
            caption=spec.get("caption", ""),
            row_label=spec.get("row_label", ""),
            column_metrics=tuple(metrics) if metrics is not None else None,
            label=spec.get("label", ""),
        )

    @staticmethod
    def check(spec) -> list[str]:
        """Every rule ``spec`` breaks, a line each (empty: it is a valid spec)."""
        if not isinstance(spec, dict):
            return ["must be a mapping (the config's tables entry)"]
        columns, rows, metrics = spec.get("columns"), spec.get("rows"), spec.get("column_metrics")
        if not (_names(columns) and columns):
            return [f"'columns' must be a non-empty list of names, not {columns!r:.60}"]
        if not (isinstance(rows, dict) and rows):
            return [f"'rows' must map row labels to lists of experiments, not {rows!r:.60}"]
        n = len(columns)
        found = []
        for label, cells in rows.items():
            if not _names(cells):
                found.append(f"rows[{label!r}] must be a list of experiment names, not {cells!r:.60}")
            elif len(cells) != n:
                found.append(f"rows[{label!r}]: {len(cells)} experiments for {n} column" + ("s" if n != 1 else ""))
        if metrics is not None and not (_names(metrics) and len(metrics) == n):
            found.append(f"column_metrics must name one metric per column ({n}), not {metrics!r:.60}")
        for m in [spec.get("metric"), *(metrics if _names(metrics) else [])]:
            if m not in FINAL_METRICS:
                found.append(f"metric {m!r} is not one of {', '.join(FINAL_METRICS)}")
        return found

    def as_dict(self) -> dict:
        """The spec as the config writes it (and as the table verbs take it, in JSON)."""
        d = {"caption": self.caption, "metric": self.metric, "row_label": self.row_label}
        d["columns"] = list(self.columns)
        if self.column_metrics is not None:
            d["column_metrics"] = list(self.column_metrics)
        d["rows"] = {label: list(cells) for label, cells in self.rows.items()}
        if self.label:
            d["label"] = self.label
        return d

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric of each column."""
        return self.column_metrics or (self.metric,) * len(self.columns)

    def cells(self) -> list[tuple[str, str, str, str]]:
        """(row, column, experiment, metric) of every filled cell, row by row."""
        return [
            (row, column, e, m)
            for row, exps in self.rows.items()
            for column, m, e in zip(self.columns, self.metrics, exps, strict=True)
            if e
        ]

    @property
    def experiments(self) -> list[str]:
        """The experiments of the cells, each once, in order."""
        return list(dict.fromkeys(e for _, _, e, _ in self.cells()))
