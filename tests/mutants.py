"""A sampled mutation test: what one-line change of the math no fast test notices.

    python tests/mutants.py [--n 40] [--seed 0] [FILE ...]

Draws ``n`` mutants (seeded) from the package's math (src/kmlp/nn/ and
src/kmlp/aggregate/stats.py by default): a comparison flipped (``<`` and ``<=``, ``==``
and ``!=``), an arithmetic operator swapped (``+`` and ``-``, ``*`` and ``/``), a number
changed (``n`` to ``n + 1``, ``x`` to ``2 x``), ``and`` and ``or`` swapped, a ``not``
dropped. Each is written into its file, the fast tests (FAST) run against it, and the file
is put back byte for byte, whatever happens. Prints one line per mutant (killed by which
test, or SURVIVED) and the count that survived. A mutant that survives is a change no fast
test pins: a gap, or a change that does not alter behaviour (an equivalent mutant).

Standard library and pytest only. It edits the working tree while it runs: run nothing
else in it meanwhile.
"""

from __future__ import annotations

import argparse
import ast
import random
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = [*sorted((REPO / "src" / "kmlp" / "nn").glob("*.py")), REPO / "src" / "kmlp" / "aggregate" / "stats.py"]
#: The fast tests a mutant must fail (no workflow run: about 20 s together).
FAST = [
    "tests/test_layers.py",
    "tests/test_model.py",
    "tests/test_fast.py",
    "tests/test_training.py",
    "tests/test_training_loop.py",
    "tests/test_ablations.py",
    "tests/test_settings_reach.py",
    "tests/test_search.py",
    "tests/test_verdict.py",
    "tests/test_two_valued.py",
    "tests/test_seeds_by_need.py",
    "tests/test_paper.py",
]
SWAP = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.And: ast.Or, ast.Or: ast.And,
}  # fmt: skip


def sites(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    """Every place a mutant can be made: (node, what), outside docstrings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP:
            found.append((node, "compare"))
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in SWAP:
            found.append((node, "arithmetic"))
        elif isinstance(node, ast.BoolOp):
            found.append((node, "boolean"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((node, "not"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            found.append((node, "number"))
    return found


def mutate(source: str, index: int) -> tuple[str, str]:
    """The source with its ``index``-th site mutated, and a description of the change."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    node, what = sites(tree)[index]
    line = node.lineno
    if what == "compare":
        node.ops[0] = SWAP[type(node.ops[0])]()
    elif what in ("arithmetic", "boolean"):
        node.op = SWAP[type(node.op)]()
    elif what == "not":
        parent = parents[node]
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, node.operand)
            elif isinstance(value, list):
                setattr(parent, field, [node.operand if v is node else v for v in value])
    else:
        node.value = node.value + 1 if isinstance(node.value, int) else node.value * 2 or 1.0
    before = source.splitlines()[line - 1].strip()
    return ast.unparse(tree) + "\n", f"line {line} ({what}): {before}"


def run_fast(tests: list[str]) -> str | None:
    """The first test that fails, or None when all pass."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *tests]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    if proc.returncode == 0:
        return None
    m = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.M)
    return m.group(1) if m else f"exit {proc.returncode}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="mutants to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("files", nargs="*", type=Path, help="files to mutate (default: nn/ and stats.py)")
    args = parser.parse_args(argv)
    files = [f.resolve() for f in args.files] or TARGETS
    pool = [(f, i) for f in files for i in range(len(sites(ast.parse(f.read_text()))))]
    drawn = sorted(random.Random(args.seed).sample(pool, min(args.n, len(pool))), key=lambda x: (str(x[0]), x[1]))
    survived = 0
    for path, index in drawn:
        original = path.read_bytes()
        text, change = mutate(original.decode(), index)
        try:
            path.write_text(text)
            killer = run_fast(FAST)
        finally:
            path.write_bytes(original)
        survived += killer is None
        print(f"{'SURVIVED' if killer is None else 'killed  '} {path.relative_to(REPO)} {change}"
              + (f"  <- {killer}" if killer else ""), flush=True)  # fmt: skip
    print(f"{survived} of {len(drawn)} mutants survived ({len(pool)} sites in {len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
