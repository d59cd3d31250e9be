"""The layout's promises: the math imports nothing above it, the study loads no NumPy, no
module imports itself in a circle, and a setting is defined once (the dataclass), named in
the schema and reachable from the CLI."""

import ast
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from kmlp.cli import build_parser
from kmlp.nn.settings import GradcheckSettings, TrainSettings

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def loaded(code: str, prefixes: tuple) -> list:
    """The modules starting with one of ``prefixes`` that a fresh process has loaded after ``code``."""
    check = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    return eval(subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, text=True).stdout)


SRC = SCHEMA.parents[2] / "src" / "kmlp"


def imports() -> dict[str, set[str]]:
    """Module -> the kmlp modules it imports (anywhere in it, at the top or in a function)."""
    names = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in SRC.rglob("*.py")}  # fmt: skip
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
                module = ".".join(filter(None, [base, node.module or ""]))
                found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in names else module for a in node.names}
        graph[name] = {m for m in found if m in names and m != name}
    return graph


def test_no_module_of_the_package_imports_itself_in_a_circle():
    graph = imports()
    assert len(graph) > 40 and graph["kmlp.cli.train"] >= {"kmlp.nn.training", "kmlp.runs"}
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_math_imports_nothing_above_it():
    """kmlp.nn imports only kmlp.nn: no files, command line, study, bench or tables."""
    outside = {m: sorted(d for d in deps if not d.startswith("kmlp.nn")) for m, deps in imports().items()}
    assert {m: d for m, d in outside.items() if m.startswith("kmlp.nn") and d} == {}
    io = ("kmlp.data", "kmlp.aggregate", "kmlp.runs", "kmlp.files", "kmlp.cli", "kmlp.study", "kmlp.bench", "h5py",
          "matplotlib", "pandas")  # fmt: skip
    assert loaded("import kmlp.nn, kmlp.nn.gradcheck, kmlp.nn.search, kmlp.nn.training", io) == []


def test_the_bench_reads_no_files():
    io = ("kmlp.data.dataset", "kmlp.data.download", "kmlp.runs", "kmlp.files", "kmlp.cli", "kmlp.aggregate", "h5py")
    assert loaded("import kmlp.bench.runs, kmlp.bench.torch_twin", io) == []


def test_planning_the_study_loads_no_numpy():
    """The workflow asks kmlp.study while Snakemake plans: all it asks, without NumPy or h5py."""
    code = f"""
import yaml
from kmlp.study import Study
from kmlp.study.cluster import Requests
study = Study(yaml.safe_load(open({str(SCHEMA.parents[2] / "config" / "config.yaml")!r}))).check()
ask = Requests(study)
for e in study.experiments:
    study.seeds(e), study.settings(e, 0.001).as_dict(), study.memory_mb(e, 10**9), study.val_size(e)
    s = study.seeds(e)[0]
    ask.run_s(e, 1), ask.job_s(e, s, 1), ask.train_mem_mb(e, 10**9, 1), ask.nice(e), ask.priority(e, s)
study.readings(), study.report_experiments(), study.val_sizes(), study.gradchecks
study.pooled_with(["3layer-bn"]), [t.experiments for t in study.tables.values()]
ask.setup_s(1), ask.prepare_s(1), ask.check_s(1), ask.prepare_mem_mb(10**8, 1), ask.check_mem_mb(1)
[study.val_size_named(study.data_name(v)) for v in study.val_sizes()]
"""
    assert loaded(code, ("numpy", "h5py", "pandas", "matplotlib")) == []


def test_the_workflows_helpers_stay_look_ups():
    """workflow/rules/common.smk turns the study's answers into paths and params; the
    arithmetic (the cluster's requests, the data's names, the record's lambdas) lives in
    the package, beside its tests (issue 32: under 200 lines)."""
    common = SCHEMA.parents[1] / "rules" / "common.smk"
    lines = common.read_text().splitlines()
    assert len(lines) < 200, f"{common.name}: {len(lines)} lines"


def test_a_setting_is_spelled_where_it_is_defined_and_where_training_uses_it():
    """The memory model asks TrainSettings; no other module of the package or rule of the
    workflow spells a setting such as eval_train_subset."""
    repo = SCHEMA.parents[2]
    files = [*SRC.rglob("*.py"), *(repo / "workflow").rglob("*.smk")]
    spelled = sorted(p.relative_to(repo).as_posix() for p in files if "eval_train_subset" in p.read_text())
    assert spelled == ["src/kmlp/nn/settings.py", "src/kmlp/nn/training.py"]


def test_the_command_line_starts_without_numpy():
    """Every workflow job is a process: `import kmlp.cli` and the parser load no NumPy,
    h5py or package metadata; a verb imports what it uses."""
    heavy = ("numpy", "h5py", "matplotlib", "importlib.metadata")
    assert loaded("import kmlp, kmlp.cli\nkmlp.cli.build_parser()", heavy) == []


def test_threads_limit_the_blas_of_a_fresh_process(tmp_path):
    """--threads is set before the verb runs, though NumPy loads after the parser."""
    out = tmp_path / "check.json"
    code = f"from kmlp.cli import main; main(['gradcheck', '--threads', '1', '--out', {str(out)!r}])"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert "(1 threads)" in json.loads(out.read_text())["environment"]["blas"]


@pytest.mark.parametrize(
    "cls, schema_path, extra",
    [
        (TrainSettings, ("$defs", "settings", "properties"), set()),
        (GradcheckSettings, ("properties", "gradcheck", "properties"), {"checks"}),
    ],
)
def test_schema_names_every_setting_and_nothing_else(cls, schema_path, extra):
    node = yaml.safe_load(SCHEMA.read_text())
    for key in schema_path:
        node = node[key]
    keys = set(node)
    if cls is GradcheckSettings:  # shared keys, plus the keys of each check
        keys |= set(node["checks"]["additionalProperties"]["properties"])
    assert keys - extra == {f.name for f in fields(cls)}


@pytest.mark.parametrize("verb, cls", [("train", TrainSettings), ("gradcheck", GradcheckSettings)])
def test_every_setting_has_a_flag(verb, cls):
    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    dests = {a.dest for a in sub.choices[verb]._actions}
    assert {f.name for f in fields(cls)} | {"settings"} <= dests


def test_the_package_declares_every_library_it_imports():
    """`pip install kmlp` must bring what any verb imports (the tables need pandas)."""
    import tomllib

    repo = SCHEMA.parents[2]
    declared = " ".join(tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]).lower()
    # import name -> distribution, where they differ; PIL comes with matplotlib; torch is optional ([bench])
    distribution = {"yaml": "pyyaml", "PIL": "matplotlib", "torch": None}
    imported = set()
    for path in (repo / "src" / "kmlp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "kmlp"}
    needed = {distribution.get(m, m) for m in third_party} - {None}
    assert needed and all(d.lower() in declared for d in needed), (needed, declared)
