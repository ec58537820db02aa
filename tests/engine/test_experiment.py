"""The value-of-information experiment (SPEC §9, §10): the grid, its executors, its files, its CLI.

Every grid here is tiny (one small scenario, 2 x 2 policies x 2 runs, a few iterations per simulated
minute) because the machine is shared. The three executors (in process, process pool, Dask
``LocalCluster`` on loopback) must give identical rows for the same seeds, since each run's seed
depends only on the base seed and the run number (common random numbers across policies).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine import experiment
from engine.cli import main
from engine.errors import InputError
from engine.experiment import SCHEMA, plot, run_grid, run_seed, summarise, summary_markdown, write_runs
from engine.generate import generate
from engine.simulate import SimulationConfig, planner_seed, simulate
from engine.solve import MAX_SEED

ROOT = Path(__file__).resolve().parents[2]
UPDATES, DELAYS, RUNS, BASE = (1, 3), (0, 2), 2, 5
CONFIG = SimulationConfig(iterations_per_minute=20)


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "runtime_s"} for r in rows]


@pytest.fixture(scope="module")
def tiny_dict():
    return generate("tiny", seed=1)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, tiny_dict):
    path = tmp_path_factory.mktemp("scenario") / "tiny.json"
    path.write_text(json.dumps(tiny_dict), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def serial_rows(tiny_dict):
    return run_grid(tiny_dict, UPDATES, DELAYS, RUNS, seed=BASE, config=CONFIG, workers=1)


# --- the grid ------------------------------------------------------------------------------------

def test_grid_has_every_policy_and_run_sorted_with_common_seeds(serial_rows):
    keys = [(r["updates"], r["delay"], r["run"]) for r in serial_rows]
    assert keys == [(k, float(d), r) for k in UPDATES for d in DELAYS for r in range(RUNS)]
    for r in serial_rows:
        assert r["seed"] == run_seed(BASE, r["run"])
        assert r["horizon"] == CONFIG.horizon and r["iterations_per_minute"] == CONFIG.iterations_per_minute
        assert r["rejected_deltas"] == 0
        assert r["score"] == pytest.approx(r["delivered_dead"] + r["rest_expected"], abs=1e-9)
    # common random numbers: run r has the same seed under every policy, different runs differ
    by_run = {}
    for r in serial_rows:
        by_run.setdefault(r["run"], set()).add(r["seed"])
    assert all(len(s) == 1 for s in by_run.values())
    assert len({next(iter(s)) for s in by_run.values()}) == RUNS
    assert run_seed(BASE, 0) != run_seed(BASE + 1, 0) and run_seed(BASE, 1) != run_seed(BASE + 1, 1)


def test_process_pool_gives_the_same_rows(tiny_dict, serial_rows):
    rows = run_grid(tiny_dict, UPDATES, DELAYS, RUNS, seed=BASE, config=CONFIG, workers=2)
    assert _strip(rows) == _strip(serial_rows)


def test_dask_local_cluster_gives_the_same_rows_and_shows_progress(tiny_dict, serial_rows, monkeypatch):
    """The same rows; and the progress display counts each run as it ends, as it does locally
    (under Dask it showed nothing until every run was gathered)."""
    pytest.importorskip("dask.distributed")
    shown = []
    monkeypatch.setattr(experiment, "_progress", lambda done, total: shown.append((done, total)))
    rows = run_grid(tiny_dict, UPDATES, DELAYS, RUNS, seed=BASE, config=CONFIG, scheduler="local", workers=2)
    assert _strip(rows) == _strip(serial_rows)
    n = len(serial_rows)
    assert shown == [(i, n) for i in range(1, n + 1)]


def test_a_base_seed_past_the_search_s_32_bits_runs_and_repeats(tiny_dict):
    """A run's seed grows with the base seed (``run_seed``): from a base of about 42 949 on (of the
    0 to 2**32 - 1 the command line takes) it passed the search's 32 bits, and every run failed
    with an error about a seed nobody typed. The search now draws its seed from the run's."""
    rows = run_grid(tiny_dict, (1,), (0,), 2, seed=MAX_SEED, config=CONFIG, workers=1)
    assert [r["seed"] for r in rows] == [run_seed(MAX_SEED, r) for r in range(2)]
    assert all(r["seed"] > MAX_SEED and r["rejected_deltas"] == 0 for r in rows)
    assert _strip(run_grid(tiny_dict, (1,), (0,), 2, seed=MAX_SEED, config=CONFIG, workers=1)) == _strip(rows)


def test_the_search_keeps_a_run_s_seed_it_can_take_and_draws_one_from_a_larger():
    assert [planner_seed(s) for s in (0, 7, MAX_SEED)] == [0, 7, MAX_SEED]  # the runs measured so far
    drawn = [planner_seed(run_seed(MAX_SEED, r)) for r in range(50)]
    assert all(0 <= s <= MAX_SEED for s in drawn) and len(set(drawn)) == 50


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_simulate_refuses_a_seed_that_is_not_a_whole_number_from_zero(tiny_dict, seed):
    with pytest.raises(InputError, match="seed"):
        simulate(tiny_dict, seed=seed, config=CONFIG)


def test_cli_a_scheduler_without_dask_installed_is_one_line(capsys, tiny_file, tmp_path, monkeypatch):
    """Dask is an optional extra: asked for without it, the command says how to install it (it
    raised ModuleNotFoundError with a traceback)."""
    monkeypatch.setitem(sys.modules, "dask", None)  # an import of it raises ImportError
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    code = main(["experiment", str(tiny_file), "--scheduler", "local", "--runs", "1", "--updates", "1",
                 "--delays", "0", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines() == [err.splitlines()[0]]
    assert err.startswith("goldenhour: --scheduler: ") and "goldenhour[distributed]" in err


# --- files and summaries ---------------------------------------------------------------------------

def test_write_runs_writes_parquet_with_exactly_the_schema(tmp_path, serial_rows):
    path = write_runs(serial_rows, tmp_path / "deep" / "runs.parquet")
    assert path.exists()
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA, check_metadata=False), table.schema
    assert table.num_rows == len(serial_rows)
    assert table.to_pylist() == [{k: r[k] for k in SCHEMA.names} for r in serial_rows]


def test_summarise_matches_a_hand_computation(serial_rows):
    rows = serial_rows + [  # a policy with three runs and one with a single run, hand-made
        {"updates": 7, "delay": 1.0, "run": i, "score": s} for i, s in enumerate((1.0, 2.5, 4.75))
    ] + [{"updates": 2, "delay": 4.0, "run": 0, "score": 3.25}]
    summary = summarise(rows)
    groups = {}
    for r in rows:
        groups.setdefault((r["updates"], r["delay"]), []).append(r["score"])
    assert [(s["updates"], s["delay"]) for s in summary] == sorted(groups)
    for s in summary:
        scores = groups[(s["updates"], s["delay"])]
        assert s["runs"] == len(scores)
        assert s["mean"] == pytest.approx(statistics.mean(scores), abs=1e-12)
        expected_std = statistics.stdev(scores) if len(scores) > 1 else math.nan  # one run has no spread
        assert s["std"] == pytest.approx(expected_std, abs=1e-12, nan_ok=True)
    by = {(s["updates"], s["delay"]): s for s in summary}
    assert by[(7, 1.0)]["mean"] == pytest.approx(2.75)
    assert by[(7, 1.0)]["std"] == pytest.approx(math.sqrt(((1.75 ** 2) + 0.25 ** 2 + 2.0 ** 2) / 2))
    assert math.isnan(by[(2, 4.0)]["std"])  # it was 0.0, read as "no spread"
    assert summary_markdown([by[(2, 4.0)]]).splitlines()[-1] == "| 2 | 4 | 1 | 3.25 | – |"


def test_summary_markdown_has_one_row_per_policy(serial_rows):
    summary = summarise(serial_rows)
    text = summary_markdown(summary)
    lines = text.strip().splitlines()
    assert lines[0].startswith("| updates |") and set(lines[1]) <= set("|-: ")
    body = lines[2:]
    assert len(body) == len(UPDATES) * len(DELAYS) == len(summary)
    for line, s in zip(body, summary):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells == [str(s["updates"]), f"{s['delay']:g}", str(s["runs"]), f"{s['mean']:.2f}",
                         f"{s['std']:.2f}"]


def test_plot_writes_a_png(tmp_path, serial_rows):
    pytest.importorskip("matplotlib")
    path = plot(summarise(serial_rows), tmp_path / "s.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command line ------------------------------------------------------------------------------

def _cli(*argv, cwd=None):
    """``engine.cli.main`` in a fresh interpreter, as a user runs ``goldenhour``."""
    code = "import sys; from engine.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


def test_cli_experiment_end_to_end(tmp_path, tiny_file, tiny_dict):
    out = tmp_path / "study"
    p = _cli("experiment", tiny_file, "--updates", "1,2", "--delays", "0..1", "--runs", "2",
             "--iterations-per-minute", "10", "--out", out)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    table = pq.read_table(out / "runs.parquet")
    assert table.schema.equals(SCHEMA, check_metadata=False), table.schema
    assert table.num_rows == 8
    rows = table.to_pylist()
    assert sorted({(r["updates"], r["delay"]) for r in rows}) == [(1, 0.0), (1, 1.0), (2, 0.0), (2, 1.0)]
    assert all(r["seed"] == run_seed(0, r["run"]) for r in rows)
    assert all(r["iterations_per_minute"] == 10 and r["rejected_deltas"] == 0 for r in rows)
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert len(md.strip().splitlines()) == 2 + 4
    assert md in p.stdout
    try:
        import matplotlib  # noqa: F401  (the plot extra)
    except ImportError:
        assert not (out / "summary.png").exists()  # no plot without the extra, and no error
    else:
        assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the CLI's process pool gives what the library gives in process, run for run
    again = run_grid(tiny_dict, (1, 2), (0, 1), 2, seed=0, config=SimulationConfig(iterations_per_minute=10),
                     workers=1)
    assert [{k: r[k] for k in SCHEMA.names if k != "runtime_s"} for r in rows] == _strip(
        [{k: r[k] for k in SCHEMA.names} for r in again])


def test_cli_simulate_writes_parquet(tmp_path, tiny_file):
    out = tmp_path / "sim" / "runs.parquet"
    p = _cli("simulate", tiny_file, "--updates", "2", "--delay", "1.5", "--runs", "2", "--seed", "3",
             "--iterations-per-minute", "10", "--out", out)
    assert p.returncode == 0, p.stderr
    table = pq.read_table(out)
    assert table.schema.equals(SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert [(r["updates"], r["delay"], r["run"], r["seed"]) for r in rows] == [
        (2, 1.5, 0, run_seed(3, 0)), (2, 1.5, 1, run_seed(3, 1))]
    assert "| 2 | 1.5 | 2 |" in p.stdout


@pytest.mark.parametrize("argv", [
    ["experiment", "{tiny}", "--updates", "0"],
    ["experiment", "{tiny}", "--updates", ""],
    ["experiment", "{tiny}", "--delays", "x"],
    ["experiment", "{tiny}", "--delays", "3..1"],
    ["experiment", "{tiny}", "--runs", "0"],
    ["experiment", "{missing}"],
    ["simulate", "{tiny}", "--runs", "0"],
    ["simulate", "{tiny}", "--updates", "0"],
    ["simulate", "{tiny}", "--delay", "-1"],
    ["simulate", "{tiny}", "--seconds-per-minute", "0"],
    ["simulate", "{tiny}", "--seconds-per-minute", "inf"],
    ["simulate", "{missing}"],
    # NaN and infinity are numbers to argparse: a NaN delay never arrived, an infinite horizon never ended
    ["simulate", "{tiny}", "--delay", "nan"],
    ["simulate", "{tiny}", "--delay", "inf"],
    ["simulate", "{tiny}", "--duration-cv", "nan"],
    ["simulate", "{tiny}", "--duration-cv", "-0.5"],
    ["simulate", "{tiny}", "--horizon", "inf"],
    ["simulate", "{tiny}", "--horizon", "1e300"],  # finite, but past the model's longest time: it hung
    ["experiment", "{tiny}", "--horizon", "nan"],
    ["experiment", "{tiny}", "--duration-cv", "inf"],
    ["simulate", "{tiny}", "--seed", "99999999999999999999"],
    ["experiment", "{tiny}", "--scheduler", "tcp://127.0.0.1:1", "--runs", "1", "--updates", "1", "--delays", "0"],
])
def test_cli_bad_arguments_exit_2_with_one_line(capsys, tmp_path, tiny_file, argv):
    argv = [a.format(tiny=tiny_file, missing=tmp_path / "nope.json") for a in argv]
    code = main(argv + ["--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("goldenhour: "), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_outputs_that_cannot_be_written_are_refused_before_the_runs(capsys, tmp_path, tiny_file):
    """A study may run for hours: an output it cannot write is bad input, found before the first run."""
    taken = tmp_path / "a-file"
    taken.write_text("keep me")
    tiny_file = str(tiny_file)
    for argv, what in ((["experiment", tiny_file, "--out", str(taken)], "is a file, expected a folder"),
                       (["simulate", tiny_file, "--out", str(tmp_path)], "is a folder, expected a file"),
                       (["simulate", tiny_file, "--out", str(taken / "x.parquet")], "cannot write")):
        code = main(argv + ["--runs", "1", "--horizon", "1"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("goldenhour: --out: ") and what in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert taken.read_text() == "keep me"


def test_cli_a_policy_listed_twice_runs_once(tmp_path, tiny_file):
    """``--updates 1,1`` is one policy, not twice its runs (which would shrink its std)."""
    out = tmp_path / "study"
    p = _cli("experiment", tiny_file, "--updates", "2,2", "--delays", "1,1", "--runs", "2",
             "--iterations-per-minute", "5", "--out", out)
    assert p.returncode == 0, p.stderr
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert [(r["updates"], r["delay"], r["run"]) for r in rows] == [(2, 1.0, 0), (2, 1.0, 1)]


def test_rejected_facts_are_pointed_out(capsys):
    """A run in which the planner refused a reported fact is not a clean measurement of its policy:
    the command line says so, with the first refusal."""
    from engine.cli_solve import _rejected_note

    rows = [{"rejected_deltas": 0, "first_rejected": ""}, {"rejected_deltas": 2, "first_rejected": "task_started@3.0: x"}]
    _rejected_note(rows)
    err = capsys.readouterr().err
    assert err.startswith("goldenhour note: in 1 of 2 runs") and "2 in all" in err and "task_started@3.0: x" in err
    _rejected_note(rows[:1])
    assert capsys.readouterr().err == ""
