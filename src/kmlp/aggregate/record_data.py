"""The record's data: one row per run of the study (what ``kmlp record --out-runs`` writes
beside the record, e.g. docs/reproduction-runs.csv), and the record's verdicts, z and
intervals derived again from those rows alone.

The rows hold what the verdicts are computed from (each run's status and final metrics,
the report's numbers, the evaluation-set sizes and the class count) and the numeric
environment the run came from; the comment lines hold the rest: the verdict rule, the
readings and every judged table's layout. :func:`rederive` feeds them through the same
frame, statistics and Markdown as the workflow (:func:`~kmlp.aggregate.stats.summary_frame`,
:func:`~kmlp.aggregate.stats.grid_frame`, :mod:`kmlp.aggregate.record`), so a record and
its data that disagree are found by comparing text.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..environment import describe
from ..errors import KmlpError
from ..nn.metrics import FINAL_METRICS, SPLITS
from ..nn.training import HISTORY_COLUMNS
from ..runs import RunRecord
from ..study.seeds import COMMENT_KEY as NEED_KEY
from ..study.tables import TableSpec
from ..study.verdict import VerdictRule
from .tabular import csv_text, read_csv, to_float

#: The columns of a row: who, the run's numbers, the report's, the sizes, where it was made.
COLUMNS = (
    ["experiment", "seed", "status", *FINAL_METRICS]
    + [f"paper_{m}" for m in FINAL_METRICS]
    + [f"images_{s}" for s in SPLITS]
    + ["classes", "environment"]
)
#: The numbers of the history (less its step, epoch and rate).
HISTORY_METRICS = tuple(c for c in HISTORY_COLUMNS if c not in ("step", "epoch", "eta"))
#: After the environment, what the record check compares a retrained first epoch with
#: (:mod:`kmlp.aggregate.retrained`): the run's lambda (a lambda search run's is its pass's
#: pick) and its history at its first evaluation after step 0. Not required of a record's
#: data made before them.
EARLY_COLUMNS = ["lam", "early_step", *(f"early_{m}" for m in HISTORY_METRICS)]
#: The comment key of a judged table's layout: ``table <name>: <spec JSON>``.
TABLE_KEY = "table "
#: The comment key of the discrepancies' hypotheses (the config's entries, as JSON).
DISCREPANCIES_KEY = "discrepancies"


def runs_frame(runs) -> pd.DataFrame:
    """One row per run, in the order given (the early columns empty for a run read from a
    record's data, which keeps no history)."""
    rows = []
    for r in runs:
        row = {"experiment": r.experiment, "seed": r.seed, "status": r.status}
        row.update({m: float(r.final[m]) for m in FINAL_METRICS})
        row.update({f"paper_{m}": float(r.paper[m]) if m in r.paper else math.nan for m in FINAL_METRICS})
        row.update({f"images_{s}": r.eval_sizes.get(s, 0) for s in SPLITS})
        row["classes"] = r.model["sizes"][-1] if r.model.get("sizes") else 0
        row["environment"] = describe(r.environment) or "unknown"
        row["lam"] = float(r.settings.get("lam", math.nan))
        steps = (r.history or {}).get("step", ())
        first = len(steps) > 1  # step 0, then the first evaluation after it
        row["early_step"] = int(steps[1]) if first else None
        row.update({f"early_{m}": float(r.history[m][1]) if first else math.nan for m in HISTORY_METRICS})
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS + EARLY_COLUMNS).astype({"early_step": "Int64"})


def table_spec(path) -> TableSpec:
    """The layout of a judged table, read back from its CSV's cells (row, column,
    experiment, metric), in their order; a cell the table left empty stays empty."""
    _, cells = read_csv(path)
    columns = list(dict.fromkeys(c["column"] for c in cells))
    metric_of = {c["column"]: c["metric"] for c in cells}
    rows: dict = {}
    for c in cells:
        rows.setdefault(c["row"], dict.fromkeys(columns, ""))[c["column"]] = c["experiment"]
    metrics = [metric_of[c] for c in columns]
    return TableSpec.from_dict(
        {
            "metric": metrics[0],
            "columns": columns,
            "column_metrics": metrics,
            "rows": {label: list(cells.values()) for label, cells in rows.items()},
        }  # fmt: skip
    )


def judged(path) -> bool:
    """Whether a table CSV holds verdicts (a grid of the report's numbers, not diagnostics)."""
    _, rows = read_csv(path)
    grid = bool(rows) and {"row", "column", "experiment", "metric", "verdict"} <= set(rows[0])
    return grid and all(r["metric"] in FINAL_METRICS for r in rows)


def runs_csv_text(runs, summary, tables, prov: dict, discrepancies=None) -> str:
    """The record's data: the runs' rows, with the summary's verdict rule and readings, each
    judged table's layout and the discrepancies' hypotheses as comment lines."""
    meta, rows = read_csv(summary)
    readings = {r["experiment"]: r["reading"] for r in rows if r.get("reading")}
    comments = [f"{k}: {v}" for k, v in prov.items()]
    comments += [f"verdict: {meta.get('verdict', '')}", f"readings: {json.dumps(readings, sort_keys=True)}"]
    if NEED_KEY in meta:
        comments.append(f"{NEED_KEY}: {meta[NEED_KEY]}")
    if discrepancies:
        comments.append(f"{DISCREPANCIES_KEY}: {read_csv(discrepancies)[0].get(DISCREPANCIES_KEY, '[]')}")
    comments += [
        f"{TABLE_KEY}{Path(t).stem}: {json.dumps(table_spec(t).as_dict())}"  # rows in order
        for t in tables
        if judged(t)
    ]
    return csv_text(runs_frame(runs), comments)


def _cell(row: dict, column: str, path) -> float:
    x = to_float(row[column])
    if row[column] not in ("", None) and math.isnan(x) and row[column].lower() != "nan":
        raise KmlpError(f"{path}: {row['experiment']} seed {row['seed']}: {column} is not a number: {row[column]!r}")
    return x


def read_runs_csv(path) -> tuple[dict, list[RunRecord]]:
    """The comment lines and the runs of a record's data file, as run records holding what
    the verdicts use (no history, no weights)."""
    meta, rows = read_csv(path)
    return meta, runs_of_rows(rows, path)


def runs_of_rows(rows: list[dict], path) -> list[RunRecord]:
    """The run records of a record's data file's rows (as :func:`read_csv` reads them)."""
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise KmlpError(f"{path} is not a record's data file (no rows, or no column(s) {missing})")
    runs = []
    for row in rows:
        try:
            counts = {c: int(row[c]) for c in ("seed", "classes", *(f"images_{s}" for s in SPLITS))}
        except ValueError as exc:
            raise KmlpError(
                f"{path}: {row['experiment']}: a seed, class or image count is not an integer ({exc})"
            ) from None
        final = {m: _cell(row, m, path) for m in FINAL_METRICS}
        paper = {m: _cell(row, f"paper_{m}", path) for m in FINAL_METRICS}
        runs.append(
            RunRecord(
                experiment=row["experiment"],
                seed=counts["seed"],
                status=row["status"],
                settings={},
                model={"sizes": [counts["classes"]]} if counts["classes"] else {},
                history={},
                final=final,
                paper={m: v for m, v in paper.items() if not math.isnan(v)},
                eval_sizes={s: counts[f"images_{s}"] for s in SPLITS},
            )
        )
    return runs


def rederive(meta: dict, runs, out_dir) -> dict[str, Path]:
    """The summary and every judged table computed again from a record's data alone (what
    :func:`read_runs_csv` reads), written as the workflow writes them into ``out_dir``:
    name -> CSV path (``summary``, and each table by its name)."""
    from .stats import grid_frame, pools_comment, summary_frame

    rule = VerdictRule.from_json(meta.get("verdict", ""))
    comments = [f"verdict: {rule.as_json()}"]
    need = json.loads(meta[NEED_KEY]) if NEED_KEY in meta else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"summary": out_dir / "summary.csv"}
    readings = json.loads(meta.get("readings") or "{}")

    # each output from the runs its rule is given: its experiments and those pooled with them
    def of(experiments):
        order = {e: i for i, e in enumerate(rule.pooled_with(experiments))}
        return sorted((r for r in runs if r.experiment in order), key=lambda r: order[r.experiment])

    with_paper = list(dict.fromkeys(r.experiment for r in runs if r.paper))
    summary_comments = comments + [pools_comment(of(with_paper), rule)]
    summary_comments += [f"{NEED_KEY}: {meta[NEED_KEY]}"] if need else []
    written["summary"].write_text(csv_text(summary_frame(of(with_paper), rule, readings, need), summary_comments))
    if DISCREPANCIES_KEY in meta:
        from ..study.discrepancies import Discrepancy
        from .discrepancies import discrepancy_frame

        specs = [Discrepancy.from_dict(d) for d in json.loads(meta[DISCREPANCIES_KEY])]
        frame = discrepancy_frame(runs, specs, read_csv(written["summary"])[1], rule)
        written[DISCREPANCIES_KEY] = out_dir / "discrepancies.csv"
        written[DISCREPANCIES_KEY].write_text(
            csv_text(frame, [*comments, f"{DISCREPANCIES_KEY}: {meta[DISCREPANCIES_KEY]}"])
        )
    for key, value in meta.items():
        if key.startswith(TABLE_KEY):
            name = key[len(TABLE_KEY) :]
            spec = TableSpec.from_dict(json.loads(value))
            written[name] = out_dir / f"{name}.csv"
            written[name].write_text(csv_text(grid_frame(of(spec.experiments), spec, rule), comments))
    return written


def record_sections(text: str) -> dict[str, list[str]]:
    """The lines of a record that state verdicts, z and intervals, by section: the summary's
    headline and rows, and each table's rows (its ``### name (metric)`` heading's name)."""
    found: dict[str, list[str]] = {}
    name = part = None
    for line in text.splitlines():
        if line.startswith("## "):
            part = line[3:]
            name = {"The report's numbers beside ours": "summary", "Discrepancies": DISCREPANCIES_KEY}.get(part)
        elif line.startswith("### ") and part == "The report's tables":
            name = line[4:].split(" (", 1)[0]
        if name and (line.startswith(("|", "**")) or (name == DISCREPANCIES_KEY and line.startswith("### "))):
            found.setdefault(name, []).append(line)
    return found


def rederived_sections(meta: dict, runs) -> dict[str, list[str]]:
    """What :func:`record_sections` finds in a record made from its data alone."""
    from .record import discrepancies_section, summary_section, table_section

    with tempfile.TemporaryDirectory() as tmp:
        written = rederive(meta, runs, tmp)
        lines = summary_section(written["summary"])
        if DISCREPANCIES_KEY in written:
            lines += discrepancies_section(written[DISCREPANCIES_KEY])
        for name, csv in written.items():
            if name not in ("summary", DISCREPANCIES_KEY):
                lines += ["## The report's tables", *table_section(csv)]
        return record_sections("\n".join(lines))


#: A verdict as a record's cell states it.
VERDICT = re.compile(r"^(?:consistent|borderline|inconsistent)\b")


def stated(lines) -> dict:
    """How many verdicts, z and intervals a judged table's Markdown rows state: in the
    summary, its ``verdict``, ``z`` and ``one run, 95 %`` columns; in a grid, the cells
    ``consistent (z = -0.4)``."""
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines if line.startswith("|")]
    if not rows:
        return {"verdicts": 0, "z": 0, "intervals": 0}
    head = rows[0]
    body = [r for r in rows[1:] if r != head and not set(r[0]) <= set("-:|")]  # a section may hold several tables
    if "z" in head:
        col = {k: head.index(k) for k in ("verdict", "z", "one run, 95 %")}
        return {
            "verdicts": sum(bool(VERDICT.match(r[col["verdict"]])) for r in body),
            "z": sum(r[col["z"]] not in ("", "n/a") for r in body),
            "intervals": sum(r[col["one run, 95 %"]].startswith("[") for r in body),
        }
    cells = [c for r in body for c in r]
    return {"verdicts": sum(bool(VERDICT.match(c)) for c in cells), "z": sum("z = " in c for c in cells),
            "intervals": 0}  # fmt: skip


@dataclass
class Comparison:
    """A record's judged tables beside the same tables derived again from its data."""

    data: str
    runs: int
    record: dict
    derived: dict
    differences: list = field(default_factory=list)  # (section, line in the record, line from the data)

    @property
    def equal(self) -> bool:
        return not self.differences and set(self.derived) <= set(self.record)

    def counts(self) -> dict:
        """How many verdicts, z and intervals the compared lines state."""
        counts = [stated(self.record.get(name, [])) for name in self.derived]
        return {k: sum(c[k] for c in counts) for k in ("verdicts", "z", "intervals")}

    def report(self) -> list[str]:
        """What was compared and what differs, a line each."""
        c = self.counts()
        rows = sum(len(v) for v in self.derived.values())
        out = [
            f"derived again from {self.data} ({self.runs} runs): {len(self.derived)} tables ("
            + ", ".join(self.derived)
            + f"), {rows} lines, {c['verdicts']} verdicts, {c['z']} z, "
            f"{c['intervals']} intervals"
        ]
        unchecked = [name for name in self.record if name not in self.derived]
        if unchecked:
            out.append(f"not derived from run rows (they re-evaluate weights): {', '.join(unchecked)}")
        missing = [name for name in self.derived if name not in self.record]
        if missing:
            out.append(f"DIFFERENT: the record has no table {', '.join(missing)}, which its data judges")
        for section, mine, theirs in self.differences:
            out += [f"DIFFERENT in {section}:", f"  record: {mine}", f"  data:   {theirs}"]
        out.append(
            "the record and its data agree" if self.equal
            else f"the record and its data disagree: {len(self.differences)} line(s) (regenerate both together)"
        )  # fmt: skip
        return out


def compare_record(text: str, data) -> Comparison:
    """The judged tables of the record ``text`` against those its data file gives."""
    if not Path(data).exists():
        raise KmlpError(f"the record's data {data} does not exist (kmlp record --out-runs writes it)")
    meta, runs = read_runs_csv(data)
    record, derived = record_sections(text), rederived_sections(meta, runs)
    found = Comparison(str(data), len(runs), record, derived)
    for name, theirs in derived.items():
        found.differences += [(name, *pair) for pair in changed_lines(record.get(name, []), theirs)]
    return found


def changed_lines(mine: list[str], theirs: list[str]) -> list[tuple[str, str]]:
    """The lines that differ between two versions of a section, paired in order ("(none)"
    where one has no line)."""
    import difflib

    pairs = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mine, theirs, autojunk=False).get_opcodes():
        if tag != "equal":
            pairs += _paired(mine[i1:i2], theirs[j1:j2])
    return pairs


def _row_key(line: str) -> str:
    """What names a line: a table row's first two cells, a bold headline's label."""
    if line.startswith("|"):
        return "|".join(line.split("|")[1:3])
    return line.split(":", 1)[0] if line.startswith("**") else line


def _paired(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """Two blocks of changed lines paired by what names them (a row of one experiment
    and metric with the same row), the rest in order ("(none)" where one has no line)."""
    keys = {}
    for j, line in enumerate(new):
        keys.setdefault(_row_key(line), []).append(j)
    pairs, used = [], set()
    for line in old:
        js = [j for j in keys.get(_row_key(line), []) if j not in used]
        if js:
            used.add(js[0])
            pairs.append((line, new[js[0]]))
        else:
            pairs.append((line, "(none)"))
    pairs += [("(none)", line) for j, line in enumerate(new) if j not in used]
    return pairs


def moved(old, new) -> list[str]:
    """Which numbers moved between two versions of a record's data: per experiment, the
    runs whose final metrics changed and the largest change of each accuracy; then every
    line of the record's judged tables that changed, as the two versions derive it."""
    (meta0, runs0), (meta1, runs1) = read_runs_csv(old), read_runs_csv(new)
    a, b = runs_frame(runs0), runs_frame(runs1)
    keys = ["experiment", "seed"]
    both = a.merge(b, on=keys, how="outer", suffixes=("_old", "_new"), indicator=True)
    out = [f"{new} against {old}: {len(b)} runs now, {len(a)} before"]
    gone, added = both[both["_merge"] == "left_only"], both[both["_merge"] == "right_only"]
    for what, rows in (("runs only before", gone), ("runs only now", added)):
        if len(rows):
            out.append(
                f"{what}: " + ", ".join(f"{e} seed {s}" for e, s in zip(rows["experiment"], rows["seed"], strict=True))
            )
    common = both[both["_merge"] == "both"]
    old_v = common[[f"{m}_old" for m in FINAL_METRICS]].to_numpy()
    new_v = common[[f"{m}_new" for m in FINAL_METRICS]].to_numpy()
    changed = ~((old_v == new_v) | (pd.isna(old_v) & pd.isna(new_v))).all(axis=1)
    for experiment, rows in common[changed].groupby("experiment", sort=False):
        n = int((common["experiment"] == experiment).sum())
        deltas = ", ".join(
            f"{m} max |d| {(rows[f'{m}_new'] - rows[f'{m}_old']).abs().max():.4f}" for m in ("val_acc", "test_acc")
        )
        out.append(f"  {experiment}: {len(rows)} of {n} runs changed ({deltas})")
    lines0, lines1 = rederived_sections(meta0, runs0), rederived_sections(meta1, runs1)
    n_lines = 0
    for name in dict.fromkeys([*lines0, *lines1]):
        pairs = changed_lines(lines0.get(name, []), lines1.get(name, []))
        n_lines += len(pairs)
        for before, now in pairs:
            out += [f"  {name}, before: {before}", f"  {name}, now:    {now}"]
    out.append(
        f"{int(changed.sum())} run(s) changed, {len(gone) + len(added)} added or removed, {n_lines} line(s) of the "
        "record's judged tables moved" if changed.any() or len(gone) + len(added) or n_lines
        else "no number moved: every run's final metrics and every judged line are the same"
    )  # fmt: skip
    return out
