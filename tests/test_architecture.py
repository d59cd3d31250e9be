"""The layout's promises: the math imports nothing of files or the command line, and a
setting is defined once (the dataclass), named in the schema and reachable from the CLI."""

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


def test_the_math_imports_no_io_and_no_cli():
    io = ("kmlp.data", "kmlp.report", "kmlp.runs", "kmlp.files", "kmlp.cli", "h5py", "matplotlib", "pandas")
    assert loaded("import kmlp.nn, kmlp.nn.gradcheck, kmlp.nn.bench, kmlp.nn.search", io) == []


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
    import ast
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
