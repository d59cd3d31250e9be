"""The tiny config's outputs, less where they were made, against the hashes in golden/.

Same numeric environment, same software, same seeds: same outputs. A refactoring must
leave every output unchanged; a change that is meant to alter outputs records the hashes
again with ``KMLP_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` (this numeric
environment's entry; run it once per BLAS kernel, e.g. again with
``OPENBLAS_CORETYPE=Haswell``) and says why in its commit. An entry is recorded only when
the tiny study's numbers agree with golden/tiny_numbers.json within their tolerances
(tests/tiny_numbers.py, checked on every machine by test_tiny_numbers.py): a new entry
cannot certify numbers that moved. A change meant to move numbers records those first,
with ``python tests/tiny_numbers.py record`` (tests/README.md).

What is hashed is each output with the numeric environment it records removed
(:func:`canonical`): that provenance (the CPU's model name, the thread count, the Python
patch level, ...) tells where the floats came from but is none of them. So an entry is
keyed by what decides the floats and the hashed bytes alone (:func:`environment`), and it
holds on every machine that computes alike:

* the floats: the machine's architecture, the BLAS library, its version and the kernel it
  picked (OpenBLAS picks by CPU, or by ``OPENBLAS_CORETYPE``), the SIMD code NumPy
  dispatches to on this CPU (its exp, log and power differ in the last bits between
  them), NumPy's version, the C library, and Python's minor version. The C library
  because its libm makes floats here: the verdict's t and beta distributions
  (``kmlp.aggregate.stats``: ``math.lgamma``, ``exp``, ``log1p``), the lambda grid's
  ``10.0**e`` and NumPy's float64 exp and log on CPUs without AVX-512 (NumPy has SIMD
  code of its own for those only with AVX-512F) all call it, and glibc releases have
  changed their results in the last bit (2.28's new exp, log and pow). Python's minor
  version because it has changed float arithmetic (3.12's ``sum`` of floats is
  compensated); its patch level has not;
* the hashed bytes: matplotlib, its FreeType and Pillow (the drawings and the PNGs'
  pixels) and pandas (the tables' text). NumPy and h5py read the HDF5 files' arrays and
  attributes exactly whatever their versions, so h5py and HDF5 are not in the key.

The entries here were recorded on an AMD EPYC without AVX-512, where NumPy has only X86_V3:
under the Haswell kernel OpenBLAS picks there (CI's machine) and under
``OPENBLAS_CORETYPE=Sandybridge``. Issue 31 changed the tiny study's tables (each pool's
Bartlett p, the graded discrepancies), so the entries of the AVX-512 machines (Intel
AVX512_SPR under both kernels, with and without its AVX512_SPR targets) went stale and were
dropped: there the test skips until someone records them again on such a machine (an
earlier comparison on those machines found 21 of the 47 outputs differ from this one's, so
the SIMD targets are part of the key for a reason).

CI (``.ci/run``) installs the versions pinned in ``.ci/constraints.txt``, the ones the
entries were made with, and sets ``KMLP_MUST_RUN=golden``: there, an environment with
no entry fails instead of skipping. Elsewhere it skips, and the numbers are still checked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

import tiny_numbers
from workflow_project import outputs

pytestmark = [pytest.mark.slow, pytest.mark.needs("golden")]
GOLDEN = Path(__file__).parent / "golden" / "tiny.json"
#: The field every output records its numeric environment under (kmlp.environment):
#: run files' attribute, gradient checks' key, tables' comment line, the record's section.
PROVENANCE = "environment"


def numpy_simd() -> list[str]:
    """The SIMD targets NumPy was built to dispatch to that this CPU has (NumPy >= 2)."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]


def environment() -> dict:
    """What decides the tiny workflow's hashed outputs here (the module docstring)."""
    import matplotlib
    import pandas
    import PIL
    from matplotlib import ft2font
    from threadpoolctl import threadpool_info

    # SciPy's wheel brings its own OpenBLAS, loaded once kmlp.aggregate.stats is imported (by
    # an earlier test of the session, or not): NumPy's is the one that makes the floats
    blas = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas" and Path(i.get("filepath", "")).parent.name != "scipy.libs"
    ]
    return {
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()),
        "python": ".".join(platform.python_version_tuple()[:2]),
        "numpy": np.__version__,
        "numpy_simd": numpy_simd(),
        "blas": blas,
        "matplotlib": matplotlib.__version__,
        "freetype": ft2font.__freetype_version__,
        "pillow": PIL.__version__,
        "pandas": pandas.__version__,
    }


# -- outputs less their provenance -------------------------------------------------------
def _value(v) -> bytes:
    a = np.asarray(v)
    if a.dtype.kind in "OSU":
        return repr([x.decode() if isinstance(x, bytes) else str(x) for x in a.ravel()]).encode()
    return np.ascontiguousarray(a).tobytes()


def h5_canonical(data: bytes) -> bytes:
    """An HDF5 file as its arrays and attributes (name, type, shape, values), in name
    order, less the provenance attribute: not the file's layout, which the HDF5 library
    decides."""
    import h5py

    out = []
    with h5py.File(io.BytesIO(data), "r") as f:
        names = ["/"]
        f.visit(lambda name: names.append(name))
        for name in sorted(names):
            obj = f[name]
            if isinstance(obj, h5py.Dataset):
                a = np.asarray(obj[()])
                out.append(f"{name} {a.dtype.str} {a.shape}\n".encode() + _value(a))
            for key in sorted(obj.attrs):
                if key != PROVENANCE:
                    a = np.asarray(obj.attrs[key])
                    out.append(f"{name}@{key} {a.dtype.str} {a.shape}\n".encode() + _value(a))
    return b"\n".join(out)


def png_canonical(data: bytes) -> bytes:
    """A PNG as its pixels (size, mode, RGBA values) and its text chunks less provenance:
    what it shows, not how zlib packed it."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    text = {k: v for k, v in image.text.items() if k != PROVENANCE}
    head = json.dumps([image.size, image.mode, text], sort_keys=True).encode()
    return head + b"\n" + image.convert("RGBA").tobytes()


def pdf_canonical(data: bytes) -> bytes:
    """A PDF as its streams, inflated: the page's drawing, the fonts, the images. Its Info
    dictionary (title and provenance: kmlp version, config, data MD5, environment) is
    left out, and so are the cross-reference offsets, which the Info's length shifts."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.DOTALL)
    assert streams, "no stream in the PDF"
    out = []
    for raw in streams:
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            out.append(raw)
    return b"\n--stream--\n".join(out)


def text_canonical(rel: str, text: str) -> str:
    """Tables and the record less the lines naming the numeric environment."""
    if rel.endswith(".md"):
        kept, section = [], ""
        for line in text.splitlines():
            section = line if line.startswith("## ") else section
            if not (section == "## Numeric environment" and line.startswith("- ")):
                kept.append(line)
        return "\n".join(kept)
    mark = "% " if rel.endswith(".tex") else "# "
    lines = [line for line in text.splitlines() if not line.startswith(f"{mark}{PROVENANCE}: ")]
    body = [k for k, line in enumerate(lines) if not line.startswith(mark)]
    if rel.endswith(".csv") and body and PROVENANCE in next(csv.reader([lines[body[0]]])):
        # the record's data: a column of each run's environment
        rows = list(csv.reader(lines[k] for k in body))
        col = rows[0].index(PROVENANCE)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(row[:col] + row[col + 1 :] for row in rows)
        lines = [lines[k] for k in range(body[0])] + out.getvalue().splitlines()
    return "\n".join(lines)


def canonical(rel: str, data: bytes) -> bytes:
    """An output's content less the numeric environment it records (see the helpers)."""
    suffix = Path(rel).suffix
    if suffix == ".h5":
        return h5_canonical(data)
    if suffix == ".png":
        return png_canonical(data)
    if suffix == ".pdf":
        return pdf_canonical(data)
    if suffix == ".json":
        doc = json.loads(data)
        doc.pop(PROVENANCE, None)
        return json.dumps(doc, sort_keys=True).encode()
    if suffix in (".csv", ".tex", ".md"):
        return text_canonical(rel, data.decode()).encode()
    raise AssertionError(f"{rel}: no canonical form for {suffix} files; add one to test_golden.canonical")


def hashes(root: Path) -> dict:
    return {k: hashlib.sha256(canonical(k, v)).hexdigest() for k, v in outputs(root).items()}


def entries() -> list[dict]:
    return json.loads(GOLDEN.read_text())["environments"] if GOLDEN.exists() else []


def save(new: list[dict]) -> None:
    new = sorted(new, key=lambda e: json.dumps(e["environment"], sort_keys=True))
    GOLDEN.write_text(json.dumps({"environments": new}, indent=1, sort_keys=True) + "\n")


def differences(recorded: dict, env: dict) -> dict:
    return {k: (recorded.get(k), env.get(k)) for k in sorted(set(recorded) | set(env)) if recorded.get(k) != env.get(k)}


def test_tiny_outputs_match_the_recorded_hashes(tiny_project):
    got = hashes(tiny_project)
    env = environment()
    recorded = entries()
    if os.environ.get("KMLP_UPDATE_GOLDEN"):  # this entry, and none keyed otherwise (they can never match)
        moved = tiny_numbers.check(tiny_project)
        assert moved == [], (
            "KMLP_UPDATE_GOLDEN: not recorded, the tiny study's numbers differ from golden/tiny_numbers.json "
            "(if meant, record them first: python tests/tiny_numbers.py record):\n" + "\n".join(moved)
        )
        kept = [e for e in recorded if e["environment"] != env and set(e["environment"]) == set(env)]
        save([*kept, {"environment": env, "outputs": got}])
        recorded = entries()
    match = [e for e in recorded if e["environment"] == env]
    if not match:
        nearest = min((differences(e["environment"], env) for e in recorded), key=len, default={})
        pytest.skip(
            f"no golden hashes for this numeric environment ({len(recorded)} recorded; the nearest differs in "
            f"{nearest}): the tiny workflow's outputs are not compared whole here (their numbers are, by "
            "test_tiny_numbers.py), so a change of a figure's drawing or a table's text goes unnoticed. Record "
            "them with KMLP_UPDATE_GOLDEN=1, which first checks the numbers."
        )
    [entry] = match
    assert sorted(got) == sorted(entry["outputs"])
    changed = sorted(k for k in got if got[k] != entry["outputs"][k])
    assert changed == []


def test_the_golden_file_holds_each_environment_once_and_the_same_outputs():
    """Each entry is one environment's, keyed as this module keys it; all list the same
    files (what the workflow makes does not depend on the kernel); the kernel OpenBLAS picks
    on CI's machine (Haswell) has one, and at least one other kernel too."""
    recorded = entries()
    keys = [json.dumps(e["environment"], sort_keys=True) for e in recorded]
    assert len(keys) == len(set(keys)) and len(keys) >= 2
    assert all(set(e["environment"]) == set(environment()) for e in recorded)
    files = [sorted(e["outputs"]) for e in recorded]
    assert all(f == files[0] for f in files)
    kernels = {e["environment"]["blas"][0].split()[-1] for e in recorded}
    assert "Haswell" in kernels and len(kernels) >= 2


def test_ci_pins_the_numeric_stack_the_entries_were_recorded_with():
    """.ci/constraints.txt installs the versions every entry holds: a bump of one without
    recording the hashes again would make CI's golden test fail (or, elsewhere, skip)."""
    text = (Path(__file__).parents[1] / ".ci" / "constraints.txt").read_text()
    pins = dict(line.lower().split("==", 1) for line in text.splitlines() if "==" in line and line[0] != "#")
    for entry in entries():
        env = entry["environment"]
        for package in ("numpy", "matplotlib", "pillow", "pandas"):
            assert pins[package] == env[package], (package, env["blas"])


def test_the_hashes_see_the_numbers_and_not_where_they_were_made(tiny_project, tmp_path):
    """Each canonical form drops the numeric environment and keeps the rest: the same output
    recorded elsewhere hashes alike; a changed number does not."""
    import h5py
    from PIL import Image, PngImagePlugin

    from kmlp.aggregate.figures import plot_runs, save_figure
    from kmlp.runs import read_run

    made = outputs(tiny_project)

    def same_and_changed(rel, elsewhere: bytes, changed: bytes):
        assert canonical(rel, elsewhere) == canonical(rel, made[rel])
        assert canonical(rel, changed) != canonical(rel, made[rel])

    run = "results/runs/small-bn/seed1.h5"
    copies = {}
    for what in ("environment", "number"):
        path = tmp_path / f"{what}.h5"
        path.write_bytes(made[run])
        with h5py.File(path, "r+") as f:
            if what == "environment":
                f.attrs["environment"] = json.dumps({"cpu": "another CPU", "python": "3.11.99"})
            else:
                f["final"].attrs["val_cost"] += 1e-6
        copies[what] = path.read_bytes()
    same_and_changed(run, copies["environment"], copies["number"])

    check = "results/gradcheck/tiny-bn.json"
    doc = json.loads(made[check])
    elsewhere = json.dumps({**doc, "environment": {"cpu": "another CPU"}}).encode()
    same_and_changed(check, elsewhere, json.dumps({**doc, "max_rel_error": 1e-3}).encode())

    for table, mark in (("results/tables/summary.csv", "#"), ("results/tables/summary.tex", "%")):
        text = made[table].decode()
        env_line = next(line for line in text.splitlines() if line.startswith(f"{mark} environment: "))
        other = text.replace(env_line, f"{mark} environment: blas openblas SkylakeX, cpu another CPU")
        assert "0.815" in text  # small-nobn's mean test accuracy, on either kernel
        same_and_changed(table, other.encode(), text.replace("0.815", "0.825").encode())

    record = made["docs/reproduction.md"].decode()
    env_item = next(line for line in record.splitlines() if line.startswith("- blas "))
    elsewhere = record.replace(env_item, "- blas x, cpu another CPU")
    same_and_changed("docs/reproduction.md", elsewhere.encode(), record.replace("| yes |", "| no |", 1).encode())

    png = "results/figures/figure1.png"
    image = Image.open(io.BytesIO(made[png]))

    def png_bytes(picture, **text) -> bytes:
        info = PngImagePlugin.PngInfo()
        for k, v in {**image.text, **text}.items():
            info.add_text(k, v)
        buf = io.BytesIO()
        picture.save(buf, format="png", pnginfo=info)
        return buf.getvalue()

    pixel = image.copy()
    pixel.putpixel((10, 10), (pixel.getpixel((10, 10)) + 1) % 256)  # another palette entry
    same_and_changed(png, png_bytes(image, environment="cpu another CPU"), png_bytes(pixel))

    runs = [read_run(tiny_project / "results" / "runs" / "small-nobn" / f"seed{s}.h5") for s in (1, 2)]
    pdfs = {}
    for name, env, title in (("here", "here", "t"), ("elsewhere", "another CPU", "t"), ("other", "here", "u")):
        save_figure(plot_runs(runs, title), tmp_path / f"{name}.pdf", title=title, prov={"environment": env})
        pdfs[name] = (tmp_path / f"{name}.pdf").read_bytes()
    assert pdfs["here"] != pdfs["elsewhere"]
    assert pdf_canonical(pdfs["here"]) == pdf_canonical(pdfs["elsewhere"])
    assert pdf_canonical(pdfs["here"]) != pdf_canonical(pdfs["other"])
