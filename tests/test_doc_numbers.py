"""Every number of the hand-written documents outside docs/ (README.md, config/README.md,
profiles/slurm/README.md and the comments of config/config.yaml) tied to the code, to a
committed output, or to its source (issue 31, item 7: "No stale numbers anywhere"), as
tests/test_notes.py ties those of docs/notes.md.

A number here is an integer of two digits or more, a decimal, a percentage, a time
("46 min 10 s", "1:07") or a count ("441 runs"). Each must be one of:

(a) computed: a sentence written out below (``claims``) with its numbers computed by this
    test from the code (``kmlp.study.load`` for runs, chunks, seeds and experiments,
    ``kmlp.study.cost``, the CIFAR-10 sizes, the verdict rule), from a committed output
    (docs/reproduction.md and docs/reproduction-runs.csv for the record's numbers; the
    notes' numbers, which tests/test_notes.py holds) or from other numbers of the same
    sentence (a ratio, a sum); the sentence must stand in the document as computed, so a
    number that drifts from what the code or the record gives fails. ``EARLIER`` holds the
    numbers of earlier studies that the sentences use, each made again (``earlier``) from
    the files the repository's history holds (``git show``; in a clone without that
    history that check skips, saying so);
(b) a setting of config/config.yaml or a number of the report (its ``paper`` values),
    part of a name (CIFAR-10, lambda-bn-0.05, SHA-256, an issue number), a version, a
    date, a commit hash, or inside a code block or `inline code` (a command line);
(c) held by an existing test (``HELD``): the fragment names that test, and the test file
    must hold the text that checks it;
(d) measured where nothing committed gives it (``NOT_COMMITTED``), each with why; where
    a committed file bounds such a number (a timing against the record's own), a test
    below checks it.

A number in none of these fails with its document, line and text: so a new number, or one
that drifts, fails until it is tied to something.
"""

from __future__ import annotations

import ast
import bisect
import csv
import functools
import io
import json
import math
import re
import statistics
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import scipy.stats
import yaml

import cluster_measurements
from kmlp.aggregate.stats import COLLAPSE_BAND, binomial_bound
from kmlp.data.cifar import N_CLASSES, TEST_IMAGES, TRAIN_IMAGES
from kmlp.nn.metrics import FINAL_METRICS
from kmlp.study import Study, cost, load

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "config/README.md", "profiles/slurm/README.md", "config/config.yaml")
CONFIG_PATH = REPO / "config" / "config.yaml"
CONFIG = yaml.safe_load(CONFIG_PATH.read_text())
RECORD_PATH = "docs/reproduction.md"
RECORD = REPO / RECORD_PATH
RUNS = REPO / "docs" / "reproduction-runs.csv"
NOTES = REPO / "docs" / "notes.md"

#: Earlier states of the repository that some numbers describe.
SKYLAKEX = "25936e9"  # the SkylakeX record: the 311 runs of the study, and the 20 of its first two ablations
FIRST_RULE = "6e9e375"  # the first record under the verdict rule (SkylakeX, readings at 5 seeds, own variance)
BEFORE_ISSUE_31 = "c3b9115"  # the commit before issue 31's ablations (4e9d03e): the retrain check's 46 runs

#: SLURM's unit of time: a job asks for whole minutes, one at least.
SLURM_MINUTE_S = 60
WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def norm(text: str) -> str:
    """Whitespace collapsed, the minus sign and the en dash as a hyphen, percentages
    without the space."""
    text = re.sub(r"\s+", " ", text.replace("−", "-").replace("–", "-"))
    return re.sub(r"(\d) %", r"\1%", text).strip()


def when(condition: bool, text: str) -> str:
    """``text`` when the code or the record bears it out, else a text no document contains."""
    return text if condition else f"<not borne out: {text}>"


# -- the documents, as their numbers are read ------------------------------------------------
def yaml_comment(line: str) -> str:
    """The comment of a line of YAML (after a ``#`` outside quotes), or ""."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'" and (i == 0 or not line[i - 1].isalnum()):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i + 1 :]
    return ""


class Document:
    """A document's text as its numbers are read: its lines (for config.yaml their comments
    only) normalised and joined, and where each line starts."""

    def __init__(self, name: str, raw: str):
        self.name = name
        lines = raw.splitlines()
        if name.endswith(".yaml"):
            lines = [yaml_comment(line) for line in lines]
        self.text, self.starts = "", []
        for line in lines:
            self.starts.append(len(self.text))
            piece = norm(line)
            self.text += piece + " " if piece else ""
        self.covered: list[str | None] = [None] * len(self.text)

    def line(self, position: int) -> int:
        return bisect.bisect_right(self.starts, position)

    def cover(self, fragment: str, category: str) -> bool:
        """Marks every occurrence of ``fragment``; False if there is none."""
        fragment = norm(fragment)
        hits = [m.start() for m in re.finditer(re.escape(fragment), self.text)]
        for start in hits:
            for i in range(start, start + len(fragment)):
                self.covered[i] = self.covered[i] or category
        return bool(hits)

    def cover_code(self) -> None:
        """Fenced code blocks and `inline code`: command lines, paths, keys and examples."""
        text = self.text
        for m in re.finditer(r"```.*?```", text):
            self._mark(m.start(), m.end(), "b")
            text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
        for m in re.finditer(r"`[^`]*`", text):
            self._mark(m.start(), m.end(), "b")

    def _mark(self, start: int, end: int, category: str) -> None:
        for i in range(start, end):
            self.covered[i] = self.covered[i] or category


#: A number: a version, a time, a clock time, or a number (thousands with commas, a
#: decimal, scientific) with its percent sign.
NUMBER = re.compile(
    r"(?<![\d.,])(?:\d+(?:\.\d+){2,}|\d+ min \d+ s|\d+:\d\d(?::\d\d)?"
    r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e-?\d+)?%?)(?![\d])"
)


def counted(token: str) -> bool:
    """Whether a token is a number the documents must tie: not a single-digit integer."""
    return not re.fullmatch(r"\d", token)


def part_of_a_name(text: str, start: int, end: int) -> bool:
    """Part of a name, a version or a hash: CIFAR-10, lambda-bn-0.05, W1, snakemake#4248,
    90th, 0.3.31, issue 31, 25936e9."""
    before, after = text[max(start - 2, 0) : start], text[end : end + 1]
    token = text[start:end]
    word = re.search(r"\w*$", text[max(start - 40, 0) : start])[0] + token + re.match(r"\w*", text[end : end + 40])[0]
    return (
        bool(before)
        and (before[-1].isalpha() or before[-1] in "_#" or re.fullmatch(r"[A-Za-z]-", before))
        or (after.isalpha() or after == "_")
        or bool(re.fullmatch(r"\d+(?:\.\d+){2,}", token))
        or text[:start].endswith("issue ")
        or bool(re.fullmatch(r"[0-9a-f]{7,40}", word) and re.search(r"[a-f]", word))
    )


def settings_and_report_numbers() -> set[float]:
    """Every scalar setting of config/config.yaml (not the members of a list: seeds, widths)
    and the report's numbers (the ``paper`` values)."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            found.add(float(node))

    walk(CONFIG)
    return found


def by_setting(token: str, known: set[float]) -> bool:
    """A setting or a number of the report: a decimal or percentage equal to one, or an
    integer of three digits or more (two-digit integers are counts: they need a claim)."""
    if token.endswith("%"):
        return round(float(token[:-1].replace(",", "")) / 100, 10) in known
    if re.fullmatch(r"[\d,]+", token) and int(token.replace(",", "")) < 100:
        return False
    if re.fullmatch(r"[\d,.e-]+", token):
        return float(token.replace(",", "")) in known
    return False


# -- what the code and the committed outputs give ---------------------------------------------
@functools.cache
def study() -> Study:
    """The study `snakemake --cores 2` runs (the config as committed)."""
    return load(CONFIG_PATH)


@functools.cache
def full_study() -> Study:
    """The study of the record and of the README's offline and cluster lines (the lambda
    search on: config/rebuild-archive.yaml)."""
    return load(CONFIG_PATH, REPO / "config" / "rebuild-archive.yaml")


def tiny_cluster_study() -> Study:
    """The tiny config as tests/test_slurm.py runs it on the test cluster: 14 seeds."""
    text = (REPO / "tests" / "test_slurm.py").read_text()
    assert '"seeds": list(range(1, 15))' in text, "tests/test_slurm.py no longer runs the tiny config with 14 seeds"
    tiny = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    return Study({**tiny, "seeds": list(range(1, 15))})


def with_cluster(seeds: int, chunk_minutes: float | None) -> dict:
    """config/config.yaml with seeds 1..``seeds`` on 100 CPUs, its chunks of ``chunk_minutes``
    (None: sized to the CPUs), as `kmlp cluster-plan --seeds N --cpus 100` plans it."""
    cluster = {**CONFIG["cluster"], "cpus": 100, "chunk_minutes": chunk_minutes}
    return {**CONFIG, "seeds": list(range(1, seeds + 1)), "cluster": cluster}


def csv_rows(text: str) -> tuple[dict, list[dict]]:
    """A record's data: its comment lines (key -> value) and its rows."""
    meta, body = {}, []
    for line in text.splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            meta[key] = value
        else:
            body.append(line)
    return meta, list(csv.DictReader(io.StringIO("\n".join(body))))


@functools.cache
def record_data(text: str | None = None) -> tuple[dict, list[dict]]:
    return csv_rows(RUNS.read_text() if text is None else text)


def wall_time_s(record_text: str) -> int:
    """The study's wall-clock time as the record's *Compute time* section gives it."""
    h, m, s = re.search(r"the study took \*\*(\d+):(\d\d):(\d\d)\*\* wall-clock", record_text).groups()
    return 3600 * int(h) + 60 * int(m) + int(s)


def notes_number(pattern: str) -> str:
    """A number of docs/notes.md (which tests/test_notes.py holds)."""
    m = re.search(pattern, norm(NOTES.read_text()))
    assert m, f"docs/notes.md no longer says {pattern!r}"
    return m.group(1)


def epochs(s: Study, experiment: str) -> float:
    settings = s.spec(experiment)
    return 2 * settings["n_s"] * settings["cycles"] * settings["n_batch"] / s.n_train(s.val_size(experiment))


def with_seeds(s: Study, experiments) -> list[tuple[int, int]]:
    """(seeds, how many) of ``experiments``: how many experiments have each number of seeds, the most first."""
    return sorted(Counter(len(s.seeds(e)) for e in experiments).items(), reverse=True)


def repeated(times: Counter) -> str:
    """How many experiments got more than one step: ", 2 of them twice and one three times"."""
    parts = []
    for i, k in enumerate(sorted(k for k in times if k > 1)):
        how = {2: "twice", 3: "three times"}.get(k, f"{k} times")
        parts.append(f"{times[k]} of them {how}" if i == 0 else f"{WORDS.get(times[k], times[k])} {how}")
    return ", " + " and ".join(parts) if parts else ""


def minutes(seconds: int) -> str:
    return f"{seconds // 60} min {seconds % 60} s"


#: Numbers measured once, which nothing committed gives (NOT_COMMITTED below), that a claim
#: computes with: the scale-out (one node, two nodes), the runs the design section weighs,
#: and the measurement that chose the retrain check's k.
ONE_NODE_S, TWO_NODES_S = 505.6, 279.0
MEASURED_RUN_S = (5, 15)
K_SEEDS, K_SPREAD, K_LARGEST = 3, (0.59, 0.69), 2.32


#: The retrain check's first epochs under kernels that set none of its bounds: the README's
#: retrain line under OPENBLAS_CORETYPE=<kernel>, its results/tables/retrained.csv committed.
FIRST_EPOCH_KERNELS = ("Sandybridge", "Nehalem")


def first_epochs_measured(kernel: str) -> tuple[str, float, int]:
    """config/README.md's sentence on one kernel's first epochs, computed from its committed
    table, its largest standardised difference and its run count."""
    _, rows = csv_rows((REPO / "docs" / "measurements" / f"retrained-first-epochs-{kernel}.csv").read_text())
    k = float(CONFIG["retrain_check"]["k"])
    runs = len({(r["experiment"], r["seed"]) for r in rows})
    steps = [r for r in rows if r["metric"] == "early_step"]
    assert all(r["record"] == r["retrained"] for r in steps) and len(steps) == runs
    spread = [r for r in rows if r["basis"] == "spread" and float(r["tolerance"]) > 0]
    z = [(float(r["difference"]) / (float(r["tolerance"]) / k), r) for r in spread]
    acc = [x for x, r in z if r["metric"].endswith("_acc")]
    largest, at = max(z, key=lambda p: abs(p[0]))
    means = {}
    for x, r in z:
        means.setdefault(r["metric"], []).append(x)
    mean = max(abs(sum(v) / len(v)) for v in means.values())
    equal = sum(r["record"] == r["retrained"] for r in spread)
    sd = statistics.stdev(x for x, _ in z)
    sentence = (
        f"{kernel}: {runs} runs, {len(rows)} numbers, every step the same, {len(spread)} compared on the spread "
        f"({equal} of them equal); their standardised differences have a standard deviation of {sd:.2f} "
        f"({statistics.stdev(acc):.2f} for the accuracies), the largest {abs(largest):.2f} ({at['experiment']}, "
        f"`{at['metric']}`), every mean over the {runs} runs within ±{mean:.2f}"
    )
    return sentence, abs(largest), runs


#: the controller's RPCs of an squeue (sdiag's message types): the jobs (one, a user's, all),
#: the partitions, the federation
SQUEUE_RPCS = {
    "REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE", "REQUEST_JOB_USER_INFO", "REQUEST_PARTITION_INFO",
    "REQUEST_FED_INFO",
}  # fmt: skip
STATUS_RPCS = REPO / "tests" / "slurm" / "status_rpcs.json"


def status_rpcs_table(path: Path = STATUS_RPCS) -> list[str]:
    """The rows of profiles/slurm/README.md's table of the controller's RPCs a round of
    status checks, from the committed measurement (tests/slurm/status_rpcs.py), and the
    numbers of jobs of its sentence."""
    rounds = json.loads(path.read_text())["rounds"]
    squeue = lambda r: sum(n for kind, n in r["rpcs"].items() if kind in SQUEUE_RPCS)  # noqa: E731
    rows, sizes = [], sorted({r["jobs"] for r in rounds})
    for n in sizes:
        with_ = [r for r in rounds if r["jobs"] == n and r["sidecar"]]
        [without] = [r for r in rounds if r["jobs"] == n and not r["sidecar"]]
        cells = [
            f"{n}",
            ", ".join(f"{squeue(r):,}" for r in with_),
            ", ".join(f"{r['seconds']:.1f}" for r in with_) + " s",
            f"{squeue(without):,}",
            f"{without['seconds']:.1f} s",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return [*rows, f"for {sizes[0]} jobs as for {sizes[-1]}"]


def status_rpcs_left(path: Path = REPO / "tests" / "slurm" / "status_rpcs_left.json") -> list[str]:
    """profiles/slurm/README.md's sentence on the jobs that left squeue, from its measurement."""
    rounds = json.loads(path.read_text())["rounds"]
    first, second = (r for r in rounds if r["sidecar"])
    [without] = [r for r in rounds if not r["sidecar"]]
    left, held = first["left"], first["jobs"]
    assert first["status_queries"] == second["status_queries"] == 1, rounds
    assert (first["accounting_queries"], second["accounting_queries"]) == (1, 0), rounds
    return [
        f"Jobs that left squeue: {left} jobs that had ended more than MinJobAge before, asked about beside {held} "
        "held ones",
        f"one sacct for all {left}",
        f"without it a round was {without['status_queries']} squeues and {without['accounting_queries']} sacct queries",
    ]


def claims(record_text: str | None = None, runs_text: str | None = None) -> dict[str, list[str]]:
    """Every sentence of the documents whose numbers the code or a committed output gives,
    by document, with those numbers computed."""
    record_text = RECORD.read_text() if record_text is None else record_text
    meta, rows = record_data(runs_text)
    s, full = study(), full_study()
    rule = CONFIG["verdict"]
    need = CONFIG["seeds_by_need"]
    report = s.report_experiments()
    n_metrics = len(FINAL_METRICS)
    [seeds] = {len(s.seeds(e)) for e in report}
    readings = [e for e in s.readings() if e in CONFIG["experiments"]]
    ablations = [e for e in CONFIG["experiments"] if not s.paper(e)]
    n_train = s.n_train(s.val_size())
    first = [first_epochs_measured(kernel) for kernel in FIRST_EPOCH_KERNELS]
    first_largest, [first_runs] = max(f[1] for f in first), {f[2] for f in first}

    # the record's run: its configured runs, the runs seeds by need added, the jobs they took
    configured = json.loads(meta["seeds_by_need"])["configured"]
    added = [r for r in rows if r["experiment"] in configured and int(r["seed"]) not in configured[r["experiment"]]]
    planned = set(full.runs(full.experiments))
    made = {(r["experiment"], int(r["seed"])) for r in rows if r not in added}
    missing = {e for e, _ in planned - made}
    before_31 = bool(missing) and made <= planned and not any(full.paper(e) for e in missing)
    blocks = Counter()
    for r in added:
        blocks[r["experiment"]] += 1
    blocks = {e: math.ceil(n / need["step"]) for e, n in blocks.items()}
    times = Counter(blocks.values())
    issue_31 = " from before issue 31's ablations,"  # the record's run had not trained them yet
    pct = re.search(r"Seeds by need added \d+ training runs: \d+ s of job time, ([\d.]+)% more", record_text)[1]

    # the cluster plan: chunks of the configured runs, of each pass of the search, the setup
    names = {c.name for c in full.chunks.values()}
    floor = cost.JOB_START_S / cost.START_SHARE  # the shortest chunk worth a job
    start = f"a job's start ({cost.JOB_START_S:g} s, the Snakemake inside it) would be over {cost.START_SHARE:.0%}"
    jobs_of = {  # (seeds, chunk_minutes) on 100 CPUs -> the jobs of the configured runs
        (n, minutes): len({c.name for c in Study(with_cluster(n, minutes)).chunks.values()})
        for n, minutes in ((100, 2), (1000, 2), (1000, None))
    }
    figures_1_4 = len(
        s.runs([e for f in ("figure1", "figure2", "figure3", "figure4") for e in s.figures[f].experiments])
    )
    train_chunks = sum(name.startswith("train-") for name in names)
    submissions = len(names) + 1  # the setup: every data set and gradient check (tests/test_workflow.py)
    short = [e for row in CONFIG["tables"]["table2_init_short"]["rows"].values() for e in row]
    n_short = len(s.runs(short))
    tiny = tiny_cluster_study()
    tiny_all = len(tiny.runs(tiny.experiments))
    figure3 = s.runs(CONFIG["figures"]["figure3"]["experiments"])

    # the retrain check's k: the spread of another BLAS kernel, on the record's 17 configurations
    k = CONFIG["retrain_check"]["k"]
    chance = 1 / N_CLASSES
    collapsed = [
        e
        for e in report
        if all(abs(float(r["test_acc"]) - chance) <= COLLAPSE_BAND * chance for r in rows if r["experiment"] == e)
    ]
    learned = len(report) - len(collapsed)

    # the verdict rule
    p_in, p_out = round(1 - rule["consistent"], 6), round(1 - rule["inconsistent"], 6)  # the p of a Holm verdict
    inner, outer = (1 + rule["consistent"]) / 2, (1 + rule["inconsistent"]) / 2
    band = scipy.stats.norm.ppf(outer) - scipy.stats.norm.ppf(inner)
    pools = CONFIG["verdict"]["pools"]
    reading_df = [
        sum(len(full.seeds(e)) - 1 for e in pool["experiments"] if e in full.experiments)
        for name, pool in pools.items()
        if name.startswith("reading-")
    ]
    three = s.settings("3layer-nobn")
    sizes = s.sizes("3layer-nobn")

    val1000 = "lambda-bn-0.1-val1000"
    final = "lambda-bn-0.0001-final"
    batch50 = "lambda-bn-0.0001-batch50"
    shortrun = "sigma-nobn-1e-1-short"
    grid = "lambda-bn-0.1"
    n_s, n_batch, eval_every = (CONFIG["training"][key] for key in ("n_s", "n_batch", "eval_every"))
    status = (REPO / "profiles" / "slurm" / "sbatch-status.py").read_text()
    oom = float(re.search(r"used >= ([\d.]+) \* float\(asked\)", status)[1])
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["workflow"]
    bound = {re.match(r"[\w-]+", d)[0]: re.search(r"<(\d+)", d)[1] for d in deps if "<" in d}
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    whole = profile["group-components"]["setup"]
    wait = int(re.search(r"^WAIT = (\d+)", status, re.M)[1])
    ablation_groups = with_seeds(s, ablations)
    seeds_list = CONFIG["seeds"]

    sky, study_runs = EARLIER["skylakex runs"], EARLIER["skylakex study runs"]
    retrained_before = EARLIER["retrained before issue 31"]
    verdict, z, stable, n = EARLIER["skylakex 9layer-bn test_acc"]
    readme = [
        f"every configuration of the report, {seeds} seeds each",
        f"the {retrained_before} of them before issue 31's ablations took",
        f"their {retrained_before * n_metrics} numbers bit for bit",
        f"the {sky} runs of the study before its {len(rows) - len(added) - sky} ablation runs",
        f"the study of {study_runs} runs, before the {WORDS[EARLIER['skylakex ablations']]} ablations of the "
        "discrepancies",
        f"{study_runs} runs in",
        f"All {study_runs} run files",
        f"of {study_runs} runs (all byte-identical",
        f"({len(full.retrained()) * len(CONFIG['retrain_check']['seeds'])} runs: the report's {len(report)} "
        "configurations, the readings, the ablations and the lambda search's final run",
        f"as first epochs the {len(full.retrained()) * len(CONFIG['retrain_check']['seeds'])} took",
        f"trains {len(s.runs(s.experiments))} runs (the report's {len(report)} configurations with {seeds} seeds each, "
        f"the {len(readings)} that test other readings of it with "
        f"{'/'.join(str(k_) for k_, _ in with_seeds(s, readings))}, and {len(ablations)} that test explanations of the "
        "numbers we do not match: "
        + ", ".join(f"{n} with {k_}{' seeds' if i == 0 else ''}" for i, (k_, n) in enumerate(ablation_groups))
        + ")",
        f"fewer than {need['stable']:.0%} of the bootstrap resamples give (seeds by need, for at most "
        f"{need['budget']:.0%} more predicted training time",
        f"(the record's run: {len(rows) - len(added)} runs,{issue_31 if before_31 else ''} and the {len(added)} "
        f"that seeds by need added: {len(rows)})",
        f"the added runs took {pct}% more job time",
        f"the data set, the {len(CONFIG['gradcheck']['checks'])} gradient checks and {len(figure3)} training runs",
        f"the {n_short} runs of the short-schedule initialisation study",
        f"the same {n_short} runs, the final rates",
        f"{TWO_NODES_S / ONE_NODE_S:.2f} of one node's time",
        f"All {2 * n_short} run files byte-identical",  # one node's and two nodes'
        f"{submissions} submissions: {train_chunks} chunks of the configured runs, {len(names) - train_chunks} of the "
        "search's passes, the setup",
        f"up to {cost.CHUNKS_PER_CPU} chunks a CPU, none under {floor:.0f} s or over",
        f"in the record's run {sum(blocks.values())}: {len(blocks)} experiments{repeated(times)}",
        f"**{tiny_all} runs and {tiny_all + 1} trainings**",  # the run in flight trained twice
        f"with 4 of {tiny_all} runs done",
        f"the next invocation trained the other {tiny_all - 4}",
        f"a SLURM job of under {SLURM_MINUTE_S // 3} s could not ask for under three times its use",
        f"train {n_train:,} / validation {s.val_size():,} / test {TEST_IMAGES:,}",
    ]
    config_readme = [
        f"{verdict} at z = {z} with {stable} of the resamples agreeing ({n} seeds)",
        f"(CIFAR-10's {TRAIN_IMAGES:,} training-batch images less `val_size`)",
        f"the full study is then {train_chunks} chunks of the configured runs and one per pass of the lambda search",
        f"up to {cost.CHUNKS_PER_CPU} a CPU, none under {floor:.0f} s (a job's start, {cost.JOB_START_S:g} s, is then "
        f"under {cost.START_SHARE:.0%} of it)",
        when(
            cost.seconds(three, sizes, speed=0.5) == pytest.approx(2 * cost.seconds(three, sizes)),
            "0.5 for nodes half as fast",
        ),
        f"1/K ({chance:.3f} on CIFAR-10's test set)",
        f"A run whose accuracy lies within {COLLAPSE_BAND:.0%} of chance counts as collapsed",
        when(binomial_bound(0, 5, rule["consistent"]) > 0.10, "five runs cannot rule out a 10 % rate"),
        f"**consistent** at or above 1 - `consistent` ({p_in:g}), **inconsistent** below 1 - `inconsistent` "
        f"({p_out:g})",
        f"a run has collapsed when |accuracy - 1/K| ≤ {COLLAPSE_BAND:g}/K",
        f"exact two-sided {rule['consistent']:.0%} interval (each bound at {(1 + rule['consistent']) / 2:.1%})",
        f"consistent when k/n ≥ {p_in:g}, inconsistent when the exact Clopper-Pearson upper bound of k/n at level "
        f"{rule['inconsistent']:g} lies below {p_out:g}",
        f"(continuing its seeds: {max(seeds_list) + 1}-{max(seeds_list) + need['step']} after "
        f"{min(seeds_list)}-{max(seeds_list)})",
        # how k was chosen (config/README.md): seeds 1-3 of every configuration of the report
        f"seeds 1-{K_SEEDS} of the {len(report)} configurations, {K_SEEDS * len(report)} runs, "
        f"{K_SEEDS * len(report) * n_metrics} numbers",
        f"compared on the spread ({K_SEEDS * len(report) * n_metrics} less the",
        f"{K_SEEDS * len(report) * n_metrics - 38} compared on the spread",
        f"about {K_SPREAD[0]:.1f}-{K_SPREAD[1]:.1f} times as far",
        f"over the {len(report)} runs was",
        f"(bound {k} / sqrt({len(report)}) = {k / math.sqrt(len(report)):.2f})",
        "beyond it has probability " + re.sub(r"e-0*", "e-", f"{2 * scipy.stats.norm.sf(k):.0e}"),
        f"{len(report) * n_metrics} numbers per check) leaves {k / K_LARGEST:.1f} times the largest difference seen",
        f"a bound of {k / math.sqrt(learned):.2f} over the {learned} runs that learned; the {WORDS[len(collapsed)]} "
        f"collapsed nets' {chance:.3f}",
        f"of the {len(report)} test accuracies",
        # the same k for the first epochs: measured on two kernels that set nothing
        *(first_epochs_measured(kernel)[0] for kernel in FIRST_EPOCH_KERNELS),
        f"(bound {k} / sqrt({first_runs}) = {k / math.sqrt(first_runs):.2f}). `k = {k}` leaves "
        f"{k / first_largest:.1f} times the largest difference seen",
        f"the cost model predicts for the {first_runs} whole runs "
        f"({sum(full.run_seconds(e) for e in full.retrained()):.0f} s)",
    ]
    slurm = [
        *status_rpcs_table(),
        *status_rpcs_left(),
        *cluster_measurements.fragments(),  # issue 32's measurements (tests/test_cluster_measurements.py)
        f"every round (`seconds-between-status-checks`, {profile['seconds-between-status-checks']} s in the profile)",
        f"when no new round comes within {wait} s (`WAIT`",
        f"({study_runs} runs, before the discrepancies' {WORDS[EARLIER['skylakex ablations']]} ablations added "
        f"{EARLIER['skylakex ablation runs']})",
        f"{study_runs} runs in",
        f"as measured when they were {study_runs}",
        f"**{TWO_NODES_S / ONE_NODE_S:.2f} ×**",
        f"on the tiny config's {len(tiny.runs(tiny.config['experiments']))} runs",
        f"The {n_short} runs of the short-schedule initialisation study",
        f"**{tiny_all} runs and {tiny_all + 1} trainings**",
        f"with 4 of {tiny_all} runs done",
        f"the next invocation trained the other {tiny_all - 4}",
        f"as a SLURM job of under {SLURM_MINUTE_S // 3} s it could not ask for under three times its use",
        f"predicted time plus {cost.JOB_START_S:g} s for the Snakemake inside the job",
        f"s that asks for {SLURM_MINUTE_S // MEASURED_RUN_S[1]}-{SLURM_MINUTE_S // MEASURED_RUN_S[0]} times their use",
        f"A chunk holds at most {cost.MAX_RUNS} runs",
        f"up to {cost.CHUNKS_PER_CPU} chunks a CPU,",
        f"but none under {floor:.0f} s, where {start} of it",
        f"none of more than {cost.MAX_RUNS} runs",
        f"the {figures_1_4} runs of figures 1-4 alone as a target",
        f"the same 100 seeds are {jobs_of[100, 2]} jobs and 1,000 seeds {jobs_of[1000, 2]:,} ({jobs_of[1000, None]} "
        f"sized to the CPUs).  The makespan counts {cost.JOB_START_S:g} s of start per job",
        f"bounds Snakemake below {bound['snakemake']} and the generic executor below "
        f"{bound['snakemake-executor-plugin-cluster-generic']}",
        f"used at least {oom:.0%} of its memory",
        f"(`group-components` of its family: {whole})",
        f"what the study's runs are ({len(planned)} of them before seeds by need adds any;",
        f"as many as the study needs ({submissions} planned submissions, then one per step of seeds by need)",
    ]
    at_5, far, near = (
        float(notes_number(pattern))
        for pattern in (
            r"at 5, a kernel change moved z by up to (\d\.\d+)",
            r"by at most (\d\.\d+) on a number far outside",
            r"and (\d\.\d+) on the others",
        )
    )
    per_image = notes_number(r"\(once per image set\) (\d\.\d+-\d\.\d+)")
    per_image_n = notes_number(r"measured from per-image correctness on (\d+) configurations")
    comments = [
        f"moved z from {EARLIER['first rule sigma-nobn-1e-1 test_acc z']} to",
        f"judged over {seeds} seeds: at 5, a rerun under another BLAS kernel moved z by up to {at_5:.1f}, nearly the "
        f"width of the borderline band ({band:.1f}); at {seeds} by at most {far:.1f}, and {near:.1f} on the numbers "
        "near the band (docs/notes.md)",
        when(5 * n_train / n_batch == n_s, f"5 * {n_train:,} / n_batch"),
        when(eval_every == n_train / n_batch, f"({eval_every} = one epoch)"),
        f"(0 = all {n_train:,})",
        f"{epochs(s, grid):g} epochs = {s.spec(grid)['cycles']} cycles with n_s = {s.spec(grid)['n_s']}",
        f"a {s.val_size(val1000):,}-image validation hold-out ({s.n_train(s.val_size(val1000)):,} training images)",
        f"(n_s = {s.spec(shortrun)['n_s']}: {epochs(s, shortrun):g} epochs)",
        f"a final {s.spec(final)['cycles']} cycles on {s.n_train(s.val_size(final)):,} images",
        f"batches of {s.spec(batch50)['n_batch']} (n_s = {s.spec(batch50)['n_s']}: the same {epochs(s, batch50):g} "
        "epochs)",
        f"measured {per_image} times p(1-p)/N on {per_image_n} configurations",
        f"their variance has {min(reading_df)}-{max(reading_df)} degrees of freedom",
        f"Table 1 on {s.n_train(s.val_size(val1000)):,} training images and {s.val_size(val1000):,} validation images",
        f"up to {cost.CHUNKS_PER_CPU} chunks per CPU, whole waves of `cpus`, none under {floor:.0f} s "
        f"(a job's start is then under {cost.START_SHARE:.0%} of it)",
    ]
    return {
        "README.md": readme,
        "config/README.md": config_readme,
        "profiles/slurm/README.md": slurm,
        "config/config.yaml": comments,
    }


# -- earlier studies, from the repository's history ---------------------------------------------
def committed(commit: str, path: str) -> str:
    """A file as a commit holds it; skips, saying why, where this clone lacks the commit
    (tests/test_notes.py's reader, one for both)."""
    from test_notes import committed_text

    return committed_text(commit, path)


#: Numbers of earlier studies that the documents state, each made again from the files the
#: history holds (``earlier``, test_the_numbers_of_earlier_studies_are_theirs); ``claims``
#: writes the documents' sentences with them.
EARLIER = {
    "skylakex runs": 331,  # the SkylakeX record's runs (SKYLAKEX's docs/reproduction-runs.csv)
    "skylakex study runs": 311,  # those less the runs of its ablations: what the cluster trained
    "skylakex ablations": 2,
    "skylakex ablation runs": 20,
    "retrained before issue 31": 46,  # the retrain check's runs at BEFORE_ISSUE_31, with the search on
    "skylakex 9layer-bn test_acc": ("consistent", "1.9", "61%", "10"),  # verdict, z, stable, n
    "first rule sigma-nobn-1e-1 test_acc z": "-4.0",  # SkylakeX, 5 seeds, its own variance
}


def earlier() -> dict:
    """``EARLIER`` as the files of the commits it describes make it."""
    _, sky = csv_rows(committed(SKYLAKEX, "docs/reproduction-runs.csv"))
    paper = {r["experiment"] for r in sky if r["paper_val_acc"] or r["paper_test_acc"]}
    ablation_rows = [r for r in sky if r["experiment"] not in paper and not r["experiment"].startswith("lsearch-")]

    before = yaml.safe_load(committed(BEFORE_ISSUE_31, "config/config.yaml"))
    before["lambda_search"]["enabled"] = True  # config/rebuild-archive.yaml, as the README's line runs it
    retrained = len(Study(before).retrained()) * len(before["retrain_check"]["seeds"])

    def row(commit: str, key: str) -> list[str]:
        lines = committed(commit, "docs/reproduction.md").splitlines()
        return [c.strip() for c in next(line for line in lines if line.startswith(f"| {key} |")).split("|")]

    _, _, _, _, _, n, _, z, verdict, stable, *_ = row(SKYLAKEX, "9layer-bn | test_acc")
    return {
        "skylakex runs": len(sky),
        "skylakex study runs": len(sky) - len(ablation_rows),
        "skylakex ablations": len({r["experiment"] for r in ablation_rows}),
        "skylakex ablation runs": len(ablation_rows),
        "retrained before issue 31": retrained,
        "skylakex 9layer-bn test_acc": (verdict, z, stable, n),
        "first rule sigma-nobn-1e-1 test_acc z": row(FIRST_RULE, "sigma-nobn-1e-1 | test_acc")[7],
    }


def the_record_grew_by_ablations(runs_text: str | None = None) -> bool:
    """Whether the record's configured runs are the SkylakeX record's and ablation runs: what
    the README's "the 331 runs of the study before its N ablation runs" says."""
    _, sky = csv_rows(committed(SKYLAKEX, "docs/reproduction-runs.csv"))
    meta, rows = record_data(runs_text)
    configured = json.loads(meta["seeds_by_need"])["configured"]
    made = [r for r in rows if r["experiment"] not in configured or int(r["seed"]) in configured[r["experiment"]]]
    old = {(r["experiment"], r["seed"]) for r in sky}
    new = [r for r in made if (r["experiment"], r["seed"]) not in old]
    return old <= {(r["experiment"], r["seed"]) for r in made} and not any(
        r["paper_val_acc"] or r["paper_test_acc"] for r in new
    )


# -- numbers existing tests hold ----------------------------------------------------------------
#: fragment -> (the test that holds it, the text of that test's file that checks it).
HELD = {
    "config/README.md": {
        "(*3 of 5 at chance (0.100); 2 at 0.527 ± 0.006*)": (
            "tests/test_two_valued.py::test_a_split_number_is_described_as_what_it_is_and_judged_by_its_collapse_rate",
            '"3 of 5 at chance (0.100); 2 at 0.527 ± 0.006"',
        )
    },
    "README.md": {
        "60 MB asked for a run": ("tests/test_slurm.py::test_job_over_its_limit_is_reported", '"train:mem_mb=60"')
    },
    "profiles/slurm/README.md": {
        "60 MB asked for a run": ("tests/test_slurm.py::test_job_over_its_limit_is_reported", '"train:mem_mb=60"')
    },
    "config/config.yaml": {
        # docs/notes.md says it, and test_notes makes it from the SkylakeX study's data (EARLIER_RECORDS)
        "seed std 0.002-0.006, as report-test's": (
            "tests/test_notes.py::test_the_numbers_of_earlier_studies_are_theirs",
            '"(test accuracy 0.002–0.006)"',
        )
    },
}


# -- numbers nothing committed gives ------------------------------------------------------------
LOCAL_RUN = (
    "/usr/bin/time (or date before and after) of a whole run of the workflow, not committed; the record's own "
    "wall-clock time bounds it (test_a_timed_run_is_its_records_wall_time_and_the_start)"
)
INSTALL = "measured in a fresh venv (.ci/run's stages), not committed"
CI = "CI's log of the retrain check (test_retrained's ci_log), not committed"
SINGLE_TARGET = "a local run of the single target, timed by hand, not committed"
TEST_CLUSTER = (
    "measured on the two-node test cluster (tests/slurm/cluster.sh): the sacct output and benchmark files of "
    "those runs are not committed"
)
CI_SLURM = "CI's SLURM tests on the tiny config (tests/test_slurm.py prints them), not committed"
COST_FIT = (
    "kmlp cost-fit on the cluster run's benchmark files (not committed); the rates it fitted are "
    "kmlp.study.cost.REFERENCE"
)
SNAKEMAKE = "Snakemake's own benchmark sampling (its code, not ours)"
K_RUNS = (
    "the Haswell-forced runs on the Intel Xeon that chose the retrain check's k (config/README.md), not committed; "
    "what follows from them is computed (claims)"
)
HASWELL = (
    "the Haswell-forced study of 5 seeds, not committed (tests/test_notes.py, NOT_COMMITTED); docs/notes.md, "
    "which the comment cites, no longer states it"
)
BUDGET = (
    "the compute budget of issue 31's ablations, no config key; test_the_ablations_stay_within_their_budget checks "
    "what the config trains against it"
)

RETRAIN_CPU = "the Sandybridge retrain jobs' benchmark files (results/benchmarks/retrain/), not committed"

#: fragment -> why nothing committed gives it, by document.
NOT_COMMITTED = {
    "README.md": {
        "took 459 s": CI,
        "took 151 s of CPU (Sandybridge": RETRAIN_CPU,
        "took 78 min 7 s from an empty": LOCAL_RUN,
        "took 23 min 7 s on a 2-core Intel Xeon under SkylakeX": LOCAL_RUN,
        "the whole install took 52 s in a fresh venv here, torch alone 19 s": INSTALL,
        "50 MB, 29 s": INSTALL,
        "110 s from an empty `results/`": SINGLE_TARGET,
        "(partition `single`, 1 CPU) **505.6 s**": TEST_CLUSTER,
        "1 CPU each) **279.0 s,": TEST_CLUSTER,
        "One node took 8.4 s a run; locally (`--cores 1`) these runs took 7.2 s each (their benchmark files, 37 of "
        "the 60, in a local run stopped for time): 1.18 times": TEST_CLUSTER,
        "time limit 1.49-2.22 × Elapsed (3-4 min for 1:48-2:01), memory 1.40 × MaxRSS (1,390 MB for 995 MB); a "
        "partial chunk of 2 runs (16 s) asked for SLURM's floor of a minute (3.5-3.75 ×)": TEST_CLUSTER,
        "**30 submissions, all COMPLETED, none retried**: the setup, 25 chunks of the configured runs, 4 of the "
        "search's passes; 16 jobs on node1, 14 on node2": TEST_CLUSTER,
        "in 28 min 2 s": TEST_CLUSTER,
        "the next invocation made the 16 local steps in 48 s": TEST_CLUSTER,
        "**Time limit 1.54-2.50 × Elapsed** for every chunk (2-4 min for 1:09-2:13), the setup 2.86 × (SLURM's "
        "one-minute floor, 21 s used); **memory 1.37-1.42 × MaxRSS** for every chunk (1,390 MB for 981-1,015 MB), "
        "the setup 1.58 × (995 MB for 629 MB)": TEST_CLUSTER,
        "stopped after 22 min at 230 of": TEST_CLUSTER,
        "8 of 18 finished chunks": TEST_CLUSTER,
        "fitted to its 222 finished runs' wall times (median error 8 %)": COST_FIT,
        "NODE_FAIL about 25 s later": CI_SLURM,
        "TIMEOUT after 1:07": CI_SLURM,
        "a run that used 103 MB": CI_SLURM,
        "the tables 6.6-9.5 s each, the figures 5.3-8.3 s, the summary 10.5 s, the record, report source and the "
        "search's picks under 1.3 s each (150 MB at most), and diagnose 23.3 s, 1.0 GB (16 s on an idle "
        "machine": TEST_CLUSTER,
    },
    "config/README.md": {
        "38 equal (the collapsed nets')": K_RUNS,
        "the 38 equal)": K_RUNS,
        "a standard deviation of 0.59 (0.69 for the accuracies)": K_RUNS,
        "retrain jobs took 151 s of CPU": RETRAIN_CPU,
        "The largest was 2.32": K_RUNS,
        "the largest accuracy's 2.23": K_RUNS,
        "runs was 0.46 (bound": K_RUNS,
        "+0.004 fails (their mean 1.46": K_RUNS,
        "+0.02 puts 13 of": K_RUNS,
        "(mean 5.47); unshifted, the mean was 0.46": K_RUNS,
    },
    "profiles/slurm/README.md": {
        "0.3-10.5 s each, and diagnose 23.3 s (16 s on an idle machine; 1.0 GB": TEST_CLUSTER,
        "one node 505.6 s, two nodes 279.0 s": TEST_CLUSTER,
        "8.4 s a run on one node against 7.2 s locally on one core (benchmark files of the same runs): "
        "1.18 ×": TEST_CLUSTER,
        "Whole chunks asked for 1.49-2.22 × their Elapsed and 1.40 × their MaxRSS": TEST_CLUSTER,
        "two runs (16 s)": TEST_CLUSTER,
        "30 submissions (the setup, 25 chunks of the configured runs, 4 of the search's passes), all COMPLETED, "
        "none retried, 16 on node1 and 14 on node2": TEST_CLUSTER,
        "in 28 min 2 s": TEST_CLUSTER,
        "**1.54-2.50 × its Elapsed** (2-4 min for 1:09-2:13) and **1.37-1.42 × its MaxRSS** (1,390 MB for "
        "981-1,015 MB); the setup 2.86 × (the one-minute floor, 21 s used) and 1.58 × (995 MB for "
        "629 MB)": TEST_CLUSTER,
        "each second for 30 s, then every 30 s": SNAKEMAKE,
        "8 of its first 18 chunks": TEST_CLUSTER,
        "its 222 finished runs' wall times": COST_FIT,
        "wall times of 222 runs": COST_FIT,
        "median error of 8 % (90th percentile 20 %, largest 44 %)": COST_FIT,
        "NODE_FAIL about 25 s later": CI_SLURM,
        "TIMEOUT after 1:07": CI_SLURM,
        "a run that used 103 MB": CI_SLURM,
        "runs of 5-15 s": TEST_CLUSTER,
        "5-25 s each": TEST_CLUSTER,
        "one minute: 3-12 times its use": TEST_CLUSTER + " (5-20 s runs against SLURM's one-minute floor)",
    },
    "config/config.yaml": {"to -15.0 between two BLAS kernels": HASWELL, "the 40 % budget reaches": BUDGET},
}

#: Parts of names, versions and dates the pattern rules (part_of_a_name) do not see.
NAMES = {
    "README.md": ["(2022,", "SLURM 22.05"],
    "profiles/slurm/README.md": ["snakemake-executor-plugin-slurm 2.8**", "snakemake-interface-executor-plugins 9.4"],
}


# -- the check -----------------------------------------------------------------------------------
def read(texts: dict[str, str] | None = None) -> dict[str, Document]:
    texts = texts or {}
    return {name: Document(name, texts.get(name, (REPO / name).read_text())) for name in DOCUMENTS}


def problems(texts: dict[str, str] | None = None, record_text: str | None = None) -> tuple[list[str], dict]:
    """What in the documents no claim, setting, test or listing ties to anything (and every
    listed fragment the documents do not hold); and per document, how many numbers fall
    under each of (a)-(d)."""
    docs = read(texts)
    found = []
    made = claims(record_text)
    for name, doc in docs.items():
        for fragment, why in NOT_COMMITTED.get(name, {}).items():
            if not doc.cover(fragment, "d"):
                found.append(f"{name}: listed as not committed ({why}), but not in the document: {norm(fragment)!r}")
        for fragment, (test, _) in HELD.get(name, {}).items():
            if not doc.cover(fragment, "c"):
                found.append(f"{name}: listed as held by {test}, but not in the document: {norm(fragment)!r}")
        for fragment in made[name]:
            if not doc.cover(fragment, "a"):
                found.append(f"{name}: should say, as the code and the record give it: {norm(fragment)!r}")
        for fragment in NAMES.get(name, []):
            if not doc.cover(fragment, "b"):
                found.append(f"{name}: listed as a name or version, but not in the document: {norm(fragment)!r}")
        doc.cover_code()
    known = settings_and_report_numbers()
    tally = {}
    for name, doc in docs.items():
        tally[name] = Counter()
        for m in NUMBER.finditer(doc.text):
            token = m.group()
            if not counted(token):
                continue
            marks = doc.covered[m.start() : m.end()]
            if None not in marks:
                tally[name][marks[0]] += 1
            elif part_of_a_name(doc.text, m.start(), m.end()) or by_setting(token, known):
                tally[name]["b"] += 1
            else:
                tally[name]["none"] += 1
                context = doc.text[max(m.start() - 60, 0) : m.end() + 30]
                found.append(f"{name}:{doc.line(m.start())}: a number nothing ties: {token!r} in {context!r}")
    return found, tally


def test_every_number_of_the_documents_is_tied_to_something():
    found, tally = problems()
    assert found == [], "\n".join(found)
    assert all(sum(t.values()) > 10 for t in tally.values()), tally  # the documents were read


@pytest.mark.parametrize(
    "name, old, new",
    [
        ("config/README.md", "the full study is then 16 chunks", "the full study is then 17 chunks"),
        ("README.md", "(56 runs: the report's 17", "(46 runs: the report's 17"),  # the retrain check's runs
        ("README.md", "21 submissions: 16 chunks", "22 submissions: 16 chunks"),
        ("README.md", "trains 460 runs", "trains 350 runs"),
        ("README.md", "added: 556)", "added: 557)"),  # the record's runs
        ("README.md", "6.7% more", "6.8% more"),  # the record's compute time
        ("README.md", "in the record's run 11:", "in the record's run 10:"),  # the jobs seeds by need added
        ("README.md", "took 459 s", "took 460 s"),  # a measurement changed without its listing
        ("README.md", "its Haswell kernel, the one", "its Haswell kernel (12.5 s a run), the one"),  # a new number
        ("profiles/slurm/README.md", "(501 of\nthem", "(311 of\nthem"),
        ("profiles/slurm/README.md", "(21 planned submissions", "(30 planned submissions"),
        ("profiles/slurm/README.md", "none under 200 s, where", "none under 100 s, where"),
        ("profiles/slurm/README.md", "tiny\n  config's 45 runs", "tiny\n  config's 46 runs"),
        ("profiles/slurm/README.md", "| 500 | 2, 2 | 63.8, 61.7 s | 1,500 |", "| 500 | 2, 2 | 63.8, 61.7 s | 1,499 |"),
        ("profiles/slurm/README.md", "round comes within 30 s (`WAIT`", "round comes within 20 s (`WAIT`"),
        ("profiles/slurm/README.md", "30 squeues and 20 sacct", "30 squeues and 21 sacct"),
        ("config/README.md", "(continuing its seeds: 11-15 after 1-10)", "(continuing its seeds: 11-16 after 1-10)"),
        ("config/README.md", "= 1.07)", "= 1.08)"),
        ("config/README.md", "with 61 % of the resamples", "with 62 % of the resamples"),  # an earlier record's
        ("config/config.yaml", "28-33 degrees of freedom", "28-34 degrees of freedom"),
        ("config/config.yaml", "(450 = one epoch)", "(500 = one epoch)"),
        ("config/config.yaml", "band (1.3)", "band (1.4)"),
        ("config/config.yaml", "# (val_acc / test_acc, final", "# (val_acc / test_acc over 17 numbers, final"),
    ],
)
def test_a_changed_or_new_number_fails(name, old, new):
    text = (REPO / name).read_text()
    assert old in text, old
    changed = text.replace(old, new, 1)
    found, _ = problems({name: changed})
    assert found != [], (old, new)


def test_the_status_rounds_ask_the_controller_as_often_for_any_number_of_jobs():
    """What profiles/slurm/README.md's table shows, in the measurement it quotes: with the
    sidecar every round was one squeue (one REQUEST_JOB_INFO), for 10 jobs as for 500;
    without it, one per job.  And its command is the one the README gives."""
    measured = json.loads(STATUS_RPCS.read_text())
    rounds = measured["rounds"]
    assert {r["jobs"] for r in rounds} == {10, 500}
    for r in rounds:
        queries = {kind: n for kind, n in r["rpcs"].items() if kind.startswith("REQUEST_JOB_")}
        assert queries == ({"REQUEST_JOB_INFO": 1} if r["sidecar"] else {"REQUEST_JOB_INFO_SINGLE": r["jobs"]}), r
        assert r["answers"] == {"running": r["jobs"]} and r["accounting_queries"] == 0, r
    readme = (REPO / "profiles" / "slurm" / "README.md").read_text()
    assert measured["command"] in readme


def test_a_changed_record_fails():
    record = RECORD.read_text()
    said = re.search(r"Seeds by need added \d+ training runs: \d+ s of job time, ([\d.]+)% more", record)
    assert said
    changed = record.replace(said[0], said[0].replace(f"{said[1]}%", f"{float(said[1]) + 0.1:.1f}%"))
    found, _ = problems(record_text=changed)
    assert found != []


def test_a_changed_record_data_fails():
    """One more run in the record's data: the README's counts of it no longer hold."""
    runs = RUNS.read_text()
    last = runs.rstrip("\n").splitlines()[-1]
    experiment, seed = last.split(",")[:2]
    extra = last.replace(f"{experiment},{seed},", f"{experiment},{int(seed) + 100},", 1)
    made = claims(runs_text=runs + extra + "\n")["README.md"]
    assert not all(norm(f) in norm((REPO / "README.md").read_text()) for f in made)


def test_the_numbers_of_earlier_studies_are_theirs():
    """``EARLIER`` is what the history's files give, and the record's configured runs are the
    SkylakeX record's and ablation runs (the README's "before its N ablation runs")."""
    assert earlier() == EARLIER
    assert the_record_grew_by_ablations()


@pytest.mark.parametrize(
    "commit, path, old, new",
    [
        (SKYLAKEX, "docs/reproduction.md", "| 1.9 | consistent | 61% |", "| 1.9 | consistent | 62% |"),
        (SKYLAKEX, "docs/reproduction-runs.csv", "\nlambda-bn-0.0001-final,1,", "\nlambda-bn-0.0001-final,91,"),
        (FIRST_RULE, "docs/reproduction.md", "| -4.0 | borderline |", "| -4.1 | borderline |"),
    ],
)
def test_a_changed_earlier_file_fails(commit, path, old, new, monkeypatch):
    text = committed(commit, path)
    assert old in text, old
    real = committed
    monkeypatch.setitem(
        globals(), "committed", lambda c, p: text.replace(old, new, 1) if (c, p) == (commit, path) else real(c, p)
    )
    assert earlier() != EARLIER or not the_record_grew_by_ablations()


def test_every_held_number_is_in_the_test_that_holds_it():
    """The test named exists, and its file holds the text that checks the number (the
    number's own digits among it)."""
    for name, held in HELD.items():
        for fragment, (test, text) in held.items():
            path, function = test.split("::")
            source = (REPO / path).read_text()
            defined = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
            assert function in defined, f"{name}: {test} is not defined"
            assert text in source, f"{name}: {path} no longer holds {text!r}"
            digits = [m.group() for m in NUMBER.finditer(norm(fragment)) if counted(m.group())]
            assert all(d in norm(text) for d in digits), (fragment, text)
    notes = NOTES.read_text()
    assert "(test accuracy 0.002–0.006)" in notes  # what test_notes holds is what config.yaml says


def test_a_timed_run_is_its_records_wall_time_and_the_start():
    """/usr/bin/time of a whole run (NOT_COMMITTED) is the record's wall-clock time (first
    job's start to last job's end) and Snakemake's start and plan around it: at least the
    record's, at most two minutes more. So a record made again without the README's time
    measured again fails here."""
    readme = norm((REPO / "README.md").read_text())
    for said, record in [
        (r"took (\d+ min \d+ s) from an empty", RECORD.read_text),
        (r"took (\d+ min \d+ s) on a 2-core Intel Xeon under SkylakeX", lambda: committed(SKYLAKEX, RECORD_PATH)),
    ]:
        m, s = map(int, re.findall(r"\d+", re.search(said, readme)[1]))
        wall = wall_time_s(record())
        assert 0 <= 60 * m + s - wall <= 120, f"{minutes(60 * m + s)} timed, the record says {minutes(wall)}"


def test_the_measured_numbers_agree_with_each_other():
    """Numbers of one measurement (NOT_COMMITTED) that depend on each other: the submissions
    of the cluster run and the nodes they ran on, a ratio and its two times."""
    for name in ("README.md", "profiles/slurm/README.md"):
        text = norm((REPO / name).read_text())
        total, chunks, passes = map(
            int,
            re.search(
                r"(\d+) submissions.{0,40}?the setup, (\d+) chunks of the configured runs, (\d) of", text
            ).groups(),
        )
        node1, node2 = map(int, re.search(r"(\d+) (?:jobs )?on node1,? (?:and )?(\d+) on", text).groups())
        assert total == 1 + chunks + passes == node1 + node2, name
        one, local, ratio = map(
            float, re.search(r"(\d\.\d) s a run.*?(\d\.\d) s (?:each|locally).*?(\d\.\d\d) (?:times|×)", text).groups()
        )
        assert (one - 0.05) / (local + 0.05) <= ratio <= (one + 0.05) / (local - 0.05), name


def test_the_ablations_stay_within_their_budget():
    """config.yaml: float64 "on every configuration of the report the 40 % budget reaches":
    the ablations issue 31 added (5 seeds each) cost at most 40 % more predicted training
    time than the rest of the study."""
    s = study()
    five = [e for e in CONFIG["experiments"] if not s.paper(e) and len(s.seeds(e)) == 5]
    added = sum(s.run_seconds(e) * 5 for e in five)
    assert added / (s.training_seconds() - added) <= 0.40
