"""
The documentation's measured figures come from files that code writes (issue #17): those files exist, and none is
older than the code that writes it.

Each generated file records the sunpy_nn version that made it (``0.1.devN+g<commit>``). A file is stale when its
generating script changed in a commit that the recorded commit does not contain: the script may now write other
figures, so the page could show numbers that the code in this checkout no longer produces. Regenerate with the
command the page names (``python benchmarks/<script>.py --docs``). The validation report also records the SHA-256
of the weights it measured, which must be the shipped ones.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# generated file -> (the script that writes it, or a tuple of it and the modules that shape what it writes: a change
# to any makes the file stale; how to read the version it records)
GENERATED = {
    "docs/_static/validation/summary.json": (
        # the script, its figures, the report module that scores its numbers and writes its tables, and the maps
        # module that builds its maps and locates its cut-outs
        (
            "benchmarks/validate_enhance.py",
            "benchmarks/_validate_enhance_figures.py",
            "sunpy_nn/validation_report.py",
            "sunpy_nn/validation_maps.py",
        ),
        lambda d: d["sunpy_nn_version"],
    ),
    "docs/_static/demo/summary.json": ("sunpy_nn/demo.py", lambda d: d["sunpy_nn_version"]),
    "docs/_static/training/intensity_augmentation.json": (
        "benchmarks/intensity_augmentation.py",
        lambda d: d["sunpy_nn_version"],
    ),
    # files from before the versions per part record "version"
    "docs/_static/denoise_science/summary.json": (
        "benchmarks/denoise_science.py",
        lambda d: d.get("sunpy_nn_version", d.get("version")),
    ),
    **{
        str(p.relative_to(ROOT)): ("benchmarks/threads.py", lambda d: d["sunpy_nn_version"])
        for p in sorted((ROOT / "docs" / "_static" / "performance").glob("threads_*.json"))
    },
    **{
        str(p.relative_to(ROOT)): ("benchmarks/keras_originals.py", lambda d: d["sunpy_nn_version"])
        for p in sorted((ROOT / "docs" / "_static" / "performance").glob("keras_*.json"))
    },
    **{
        # the script and its helpers, which time, count and report what it writes
        str(p.relative_to(ROOT)): (
            (
                "benchmarks/run.py",
                "benchmarks/_run_inputs.py",
                "benchmarks/_run_report.py",
                "benchmarks/_run_fulldisk.py",
            ),
            lambda d: d["sunpy_nn_version"],
        )
        for p in sorted((ROOT / "docs" / "_static" / "performance").glob("run_*.json"))
    },
    # the script, and the science benchmark whose cube and scoring it uses
    "docs/_static/denoise_science/lazy_align.json": (
        ("benchmarks/denoise_lazy_align.py", "benchmarks/denoise_science.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, and the science benchmark whose cube and scoring it uses
    "docs/_static/denoise_science/tuning_noise.json": (
        ("benchmarks/denoise_tuning_noise.py", "benchmarks/denoise_science.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, and the science benchmark whose cubes and scoring it uses
    "docs/_static/denoise_science/seeds.json": (
        ("benchmarks/denoise_seeds.py", "benchmarks/denoise_science.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, and the science benchmark whose cubes and scoring it uses
    "docs/_static/denoise_science/reuse.json": (
        ("benchmarks/denoise_reuse.py", "benchmarks/denoise_science.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, the science benchmark whose cubes it draws, and the metric that gives its figures
    "docs/_static/denoise_science/bound.json": (
        ("benchmarks/denoise_bound.py", "benchmarks/denoise_science.py", "sunpy_nn/metrics.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, and the science benchmark whose cubes and scoring it uses
    "docs/_static/denoise_science/levers.json": (
        ("benchmarks/denoise_levers.py", "benchmarks/denoise_science.py", "benchmarks/_run_report.py"),
        lambda d: d["sunpy_nn_version"],
    ),
    # the script, the science benchmark whose cubes it fits and the levers' scoring and CPU report it uses
    "docs/_static/denoise_science/batch.json": (
        (
            "benchmarks/denoise_batch.py",
            "benchmarks/denoise_levers.py",
            "benchmarks/denoise_science.py",
            "benchmarks/_run_report.py",
        ),
        lambda d: d["sunpy_nn_version"],
    ),
    "docs/_static/scaling/dask_throughput.json": ("benchmarks/dask_throughput.py", lambda d: d["sunpy_nn_version"]),
    **{
        # the script, the science benchmark whose cube it fits, and the CPU report that names the file
        str(p.relative_to(ROOT)): (
            ("benchmarks/training_precision.py", "benchmarks/denoise_science.py", "benchmarks/_run_report.py"),
            lambda d: d["sunpy_nn_version"],
        )
        for p in sorted((ROOT / "docs" / "_static" / "training").glob("precision_*.json"))
    },
    **{
        str(p.relative_to(ROOT)): (("benchmarks/gpu.py", "benchmarks/_run_inputs.py"), lambda d: d["sunpy_nn_version"])
        for p in sorted((ROOT / "docs" / "_static" / "performance").glob("gpu_*.json"))
    },
}

# Commits that mended a generating script without changing what it wrote when it worked: commit -> (the one script it
# touched, the commit since which the script was broken, why). A file made before the breakage stays fresh across the
# mend; one made while the script was broken does not (the mend changes what it writes). Only such mends belong here;
# test_output_neutral_commits_touch_only_their_script checks the entries.
OUTPUT_NEUTRAL = {
    "1cfff69a4270384f51446dfe22cc13106785b1f6": (
        "benchmarks/keras_originals.py",
        "ca24a26a62eae1c3617dfc0a40d883284bcebe5b",
        (
            "the executed FLOPs of the timed call, counted by torch's FLOP counter, which did not know oneDNN's "
            "fused operators that the optimised networks call since ca24a26 (0.02 of 8.7 GFLOP in the quick run "
            "of tests/test_keras_originals.py): taught them; the files made before ca24a26 counted the separate "
            "operations, the same FLOPs"
        ),
    ),
    "3695102d26ddb537ce982e5691307facaf6a5125": (
        "benchmarks/keras_originals.py",
        "9594f19da17f5b2bc4ffda37f8ee7eb1955ccc2f",
        (
            "the executed FLOPs of the timed call, which since 9594f19 runs Enhance's residual blocks as NNPACK's "
            "Winograd convolution on AVX2 CPUs, an operator torch's FLOP counter does not know: taught it (with "
            "Winograd's multiply-adds, and the cases' new key gflop_winograd, which nothing reads); no file made "
            "before 9594f19 ran NNPACK"
        ),
    ),
    "fa0a230f5595ec8c3b23feb8d6fe940a71fc6412": (
        "benchmarks/keras_originals.py",
        "3695102d26ddb537ce982e5691307facaf6a5125",
        (
            "the FLOP formulas of the fused operators and of NNPACK registered each on its own (3695102 put "
            "NNPACK's behind the check of oneDNN's): the same counts; no file made before 3695102 ran NNPACK"
        ),
    ),
    "3df80303981ffea376ba83b70396d835c76913eb": (
        "benchmarks/_run_fulldisk.py",
        "a191c41f839c09957eddccb7fd044d95f4d034be",
        (
            "the full-disk child's lookup of run_tiled's cached copy, broken by the runner's new cache key (a191c41, "
            "after the AVX-512 and AVX2-capped runs of 665f5c6 measured the full disk), mended: it times the same "
            "cached copy as then"
        ),
    ),
}

# Commits that changed only what a script writes itself, not the code that other files take from it: commit -> (the
# one script it touched, why). A file that lists the script as a dependency (not as its own first script) stays fresh
# across such a commit; the script's own file does not. test_dependency_neutral_commits_touch_only_their_script checks
# the entries.
DEPENDENCY_NEUTRAL: dict[str, tuple[str, str]] = {
    "06fcde2bfb2b4c63b3fdc24347a0a3eef1492c1d": (
        "benchmarks/denoise_science.py",
        (
            "each part records its CPU and the file's machine names the model: only summary.json, which "
            "denoise_science.py writes itself, changes; the cubes and scoring that the other files take from it do not"
        ),
    ),
    "91882d04e13c07ee5444cc6ad5e0af188a4364f1": (
        "benchmarks/denoise_science.py",
        (
            "the single-scan row's name (no longer 'the default') and the file's machine, formatted by the docs "
            "extension's cpu_name: only summary.json changes; the cubes and scoring the other files take do not"
        ),
    ),
}

# Commits that changed only a script's command-line options and docstring (what a run may be asked for), not what a
# run with a file's recorded command writes: commit -> (the one script it touched, why). Every file stays fresh across
# such a commit, the script's own too. test_options_only_commits_change_options_alone checks the entries and that the
# script's changed lines are docstring lines or `add_argument` calls.
OPTIONS_ONLY: dict[str, tuple[str, str]] = {
    "1aaf3b70e0f5ea2490c892c8af7841b1b41e0245": (
        "benchmarks/denoise_science.py",
        (
            "--parts may name no part (the budget run alone, re-timed at 0.1.dev694): a run with the parts named "
            "writes what it wrote"
        ),
    ),
    "797a053af5b02d870d17783448491e0f2a739f70": (
        "benchmarks/denoise_seeds.py",
        "the docstring's run time, as the docs' copy measured it (8228 s): a run writes what it wrote",
    ),
    "4258ae8385cae20fba4162e215a15518a495f4fa": (
        "benchmarks/denoise_reuse.py",
        "the docstring's run time, as the docs' copy measured it (1236 s): a run writes what it wrote",
    ),
    "192e1ac68fd542d461fea41ae03ccf80c7cca2a0": (
        "benchmarks/denoise_reuse.py",
        "the docstring names the docs' copy's options as its recorded command has them: a run writes what it wrote",
    ),
}


def _contains(commit: str, ancestor: str) -> bool:
    return _git("merge-base", "--is-ancestor", ancestor, commit).returncode == 0


_DIRECTIVE = re.compile(r"^\s*\.\. (?:include|image|figure|literalinclude)::\s*(\S+)", re.MULTILINE)


def _pages() -> list[Path]:
    skipped = {"_build", "api", "generated"}  # built or generated pages, not written by hand
    return sorted(p for p in DOCS.rglob("*.rst") if not skipped & set(p.parts[len(DOCS.parts) :]))


@pytest.fixture(scope="module")
def build_time_files():
    """Write what the docs build writes before reading pages (``docs/_ext/generated_pages.py``), as the build does."""
    import sys
    from types import SimpleNamespace

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import generated_pages
    finally:
        sys.path.pop(0)
    generated_pages.write_demo_page_files(SimpleNamespace(srcdir=str(DOCS)))
    return generated_pages


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_included_file_exists(page, build_time_files):
    missing = [t for t in _DIRECTIVE.findall(page.read_text()) if not (page.parent / t).resolve().exists()]
    assert not missing, f"{page.relative_to(ROOT)} includes files that do not exist: {missing}"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def _have_history() -> bool:
    return shutil.which("git") is not None and _git("rev-parse", "--git-dir").returncode == 0


@pytest.mark.parametrize("path", sorted(GENERATED))
def test_generated_files_are_not_older_than_the_code_that_writes_them(path):
    if not _have_history():
        pytest.skip("needs the git history of a development checkout (absent from an sdist)")
    scripts, version_of = GENERATED[path]
    scripts = (scripts,) if isinstance(scripts, str) else scripts
    version = version_of(json.loads((ROOT / path).read_text()))
    recorded = re.search(r"\+g([0-9a-f]{7,40})", version)
    assert recorded, f"{path} records no commit in its version {version!r}; regenerate it"
    if _git("cat-file", "-e", recorded.group(1) + "^{commit}").returncode != 0:
        pytest.skip(f"commit {recorded.group(1)} is not in this clone's history (a shallow clone)")
    made = recorded.group(1)
    history = _git("log", "--format=%H", "--", *scripts).stdout.split()
    # the last change, passing over mends of a breakage that came after the file was made (it was made by working code)
    mended_after = {h for h, (_, broken_since, _) in OUTPUT_NEUTRAL.items() if not _contains(made, broken_since)}
    # changes to what a dependency writes itself, not to what this file takes from it
    mended_after |= {h for h, (script, _) in DEPENDENCY_NEUTRAL.items() if script in scripts[1:]}
    # changes to the options a script takes, not to what a run writes
    mended_after |= {h for h, (script, _) in OPTIONS_ONLY.items() if script in scripts}
    changed = next((h for h in history if h not in mended_after), None)
    if changed is None:
        return
    fresh = _contains(made, changed)
    assert fresh, (
        f"{path} was made by {', '.join(scripts)} at {recorded.group(1)}, before their change {changed[:10]}; "
        "regenerate it (the page that includes it names the command)"
    )


def _full_history_or_skip() -> None:
    """The exemptions' checks read their commits: skip where the history lacks them."""
    if not _have_history():
        pytest.skip("needs the git history of a development checkout (absent from an sdist)")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone lacks the commits of the exemptions")


def _assert_touches_only_its_script(commit: str, script: str) -> None:
    """The exemption's commit exists and touched no generating code but ``script``."""
    assert _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").stdout.strip() == commit, f"no {commit}"
    producers = set()
    for scripts, _ in GENERATED.values():
        producers |= {scripts} if isinstance(scripts, str) else set(scripts)
    touched = set(_git("show", "--name-only", "--format=", commit).stdout.split())
    assert touched & producers == {script}, (commit, sorted(touched & producers))


def test_output_neutral_commits_touch_only_their_script():
    """
    An exemption from freshness covers one script's mend of a breakage: the commit exists, touched no generating code
    but its script, and came after the commit that broke the script.
    """
    _full_history_or_skip()
    for commit, (script, broken_since, _why) in OUTPUT_NEUTRAL.items():
        _assert_touches_only_its_script(commit, script)
        assert _git("rev-parse", "--verify", "--quiet", f"{broken_since}^{{commit}}").stdout.strip() == broken_since
        assert _contains(commit, broken_since) and commit != broken_since


def test_dependency_neutral_commits_touch_only_their_script():
    """
    An exemption for the files that depend on a script covers a commit that touched no generating code but that
    script, which some file lists as a dependency.
    """
    _full_history_or_skip()
    dependencies = {d for scripts, _ in GENERATED.values() if not isinstance(scripts, str) for d in scripts[1:]}
    for commit, (script, _why) in DEPENDENCY_NEUTRAL.items():
        _assert_touches_only_its_script(commit, script)
        assert script in dependencies, f"{script} is no file's dependency: the exemption would cover nothing"


def test_options_only_commits_change_options_alone():
    """
    An exemption for a change of a script's options covers a commit that touched no generating code but that script,
    and there changed only lines of its module docstring and ``add_argument`` calls.
    """
    _full_history_or_skip()
    for commit, (script, _why) in OPTIONS_ONLY.items():
        _assert_touches_only_its_script(commit, script)
        # the module docstring's lines before the commit (for removed lines) and after it (for added ones)
        docstrings = {}
        for sign, rev in (("-", f"{commit}^"), ("+", commit)):
            text = _git("show", f"{rev}:{script}").stdout
            docstrings[sign] = text[: text.index('"""', text.index('"""') + 3)].splitlines()
        diff = _git("show", "--format=", "-U0", commit, "--", script).stdout.splitlines()
        changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        assert changed, commit
        options = {"-": [], "+": []}  # add_argument calls without their nargs= and help=, removed and added
        for line in changed:
            if "add_argument(" in line:
                options[line[0]].append(re.sub(r', (?:nargs|help)="[^"]*"', "", line[1:]))
            else:
                assert line[1:] in docstrings[line[0]], (commit, line)
        # the same options with the same defaults, types and choices: what a recorded command runs is what it ran
        assert sorted(options["-"]) == sorted(options["+"]), (commit, options)


def test_the_validation_report_measured_the_shipped_weights():
    from sunpy_nn.data import available_models, model_card

    summary = json.loads((DOCS / "_static" / "validation" / "summary.json").read_text())
    shipped = {name: model_card(name)["sha256"] for name in available_models()}
    for versions in summary["weights"].values():
        for info in versions.values():
            assert shipped.get(info["name"]) == info["sha256"], (
                f"the validation report measured {info['name']} with SHA-256 {info['sha256'][:12]}, but the shipped "
                f"file has {str(shipped.get(info['name']))[:12]}; rerun `python benchmarks/validate_enhance.py --docs`"
            )


def test_the_demo_page_quotes_its_summary(build_time_files):
    summary = json.loads((DOCS / "_static" / "demo" / "summary.json").read_text())
    figures = build_time_files.demo_figures(summary)
    assert figures["demo_gain_intensity"] == f"{summary['enhance']['intensity']['gain_db_over_bicubic']:+.1f} dB"
    page = (DOCS / "guide" / "demo.rst").read_text()
    used = set(re.findall(r"\|(demo_[a-z0-9_]+)\|", page))
    assert used and used <= set(figures)  # every substitution the page uses is written from the summary
    output = (DOCS / "guide" / "generated" / "demo_output.txt").read_text()
    assert f"{summary['enhance']['blos']['gain_db_over_bicubic']:+.2f} dB" in output


def test_the_enhance_and_validation_pages_quote_the_validation_report(build_time_files):
    summary = json.loads((DOCS / "_static" / "validation" / "summary.json").read_text())
    figures = build_time_files.validation_figures(summary)
    umbra = summary["continuum"]["sunspot"]["darkest_1pct"]
    assert figures["val_umbra_v2"] == f"{umbra['v2']:.3f}" and figures["val_umbra_input"] == f"{umbra['input']:.3f}"
    for name in ("enhance.rst", "validation.rst"):
        used = set(re.findall(r"\|(val_[a-z0-9_]+)\|", (DOCS / "guide" / name).read_text()))
        assert used and used <= set(figures), name
    assert figures["val_targets_v2"] == str(sum(t["v2"]["met"] for t in summary["targets"]))
    assert (DOCS / "guide" / "generated" / "validation_figures.inc").read_text().count("replace::") == len(figures)


def test_the_performance_guide_shows_every_thread_measurement(build_time_files):
    results = sorted((DOCS / "_static" / "performance").glob("threads_*.json"))
    assert results  # one file per CPU class and case, from `python benchmarks/threads.py --docs`
    table = (DOCS / "guide" / "generated" / "performance_threads.inc").read_text()
    for path in results:
        data = json.loads(path.read_text())
        for network in data["networks"].values():
            assert f"{network['ratio_default_over_best_fixed']:.2f}" in table
        assert f"{data['rounds']} rounds of {data['repeats']} timed runs" in table  # what each median is over (2 x 3)
    assert "generated/performance_threads.inc" in (DOCS / "guide" / "performance.rst").read_text()
