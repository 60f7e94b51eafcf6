"""Hostile inputs and faults in the runs area (issue 23): each is one line and exit 2, nothing written lost.

Study and confirmation folders are laid out by hand (`test_confirm`'s helpers), so no case starts Ray;
the race is two processes claiming one folder at once; orphans are a child whose parent is killed -9.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_confirm import ARMS, confirmed_study, write_study

from mgtune.cli import main
from mgtune.errors import ConfigError
from mgtune.files import claim_folder

_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
Damage = Callable[[Path, Path], None]  # (study folder, a folder outside it) -> None


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _rewrite(path: Path, edit: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
    header, rows = _rows(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(edit(rows))


def _cell(col: str, value: str, row: int = 1) -> Damage:  # row 1 is trial b, the best completed one
    def damage(study: Path, outside: Path) -> None:
        _rewrite(study / "results.csv", lambda rows: [r | {col: value} if i == row else r for i, r in enumerate(rows)])
    return damage


def _results(edit: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> Damage:
    return lambda study, outside: _rewrite(study / "results.csv", edit)


def _text(name: str, text: str | bytes) -> Damage:
    def damage(study: Path, outside: Path) -> None:
        path = study / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return damage


def _folder(name: str) -> Damage:
    def damage(study: Path, outside: Path) -> None:
        (study / name).unlink()
        (study / name).mkdir()
    return damage


def _study_json(**changes: object) -> Damage:
    def damage(study: Path, outside: Path) -> None:
        record = json.loads((study / "study.json").read_text())
        record.update(changes)
        (study / "study.json").write_text(json.dumps(record))
    return damage


def _truncate(name: str, cut: int = 7) -> Damage:
    def damage(study: Path, outside: Path) -> None:
        path = study / name
        path.write_bytes(path.read_bytes()[:-cut])
    return damage


def _linked_trial(study: Path, outside: Path) -> None:
    (outside / "elsewhere").mkdir()
    (outside / "elsewhere" / "params.json").write_text(json.dumps({"dropout": 0.1}))
    _rewrite(study / "results.csv", lambda rows: [r | {"trial_dir": "trial_z"} if r["trial_id"] == "b" else r
                                                  for r in rows])
    (study / "trial_z").symlink_to(outside / "elsewhere")


def _fifo(name: str) -> Damage:
    def damage(study: Path, outside: Path) -> None:
        (study / name).unlink()
        os.mkfifo(study / name)
    return damage


STUDY_CASES: dict[str, tuple[Damage, str]] = {
    "trial_dir absolute": (_cell("trial_dir", "/etc"), "trial_dir must be a folder inside"),
    "trial_dir ../..": (_cell("trial_dir", "../.."), "trial_dir must be a folder inside"),
    "trial_dir ..": (_cell("trial_dir", ".."), "trial_dir must be a folder inside"),
    "trial_dir climbing path": (_cell("trial_dir", "trial_b/../../x"), "trial_dir must be a folder inside"),
    "trial_dir of a failed trial absolute": (_cell("trial_dir", "/tmp", row=2), "trial_dir must be a folder"),
    "trial_dir a link out": (_linked_trial, "symbolic link"),
    "results.csv cut mid-line": (_truncate("results.csv"), "truncated"),
    "results.csv header only": (_results(lambda rows: []), "no trials"),
    "results.csv duplicate row": (_results(lambda rows: [*rows, rows[1]]), "unique"),
    "results.csv nan metric": (_cell("valid_recall@20", "nan"), "finite number"),
    "results.csv inf metric": (_cell("valid_recall@20", "inf"), "finite number"),
    "results.csv text metric": (_cell("valid_recall@20", "high"), "finite number"),
    "results.csv unknown status": (_cell("status", "done"), "unknown status"),
    "results.csv empty status": (_cell("status", ""), "unknown status"),
    "results.csv no trial_id": (_cell("trial_id", ""), "trial_id"),
    "results.csv empty file": (_text("results.csv", ""), "empty"),
    "results.csv not UTF-8": (_text("results.csv", b"trial_id,\xff\xfe\n"), "UTF-8"),
    "results.csv is a folder": (_folder("results.csv"), "results.csv"),
    "results.csv is a FIFO": (_fifo("results.csv"), "results.csv"),
    "results.csv columns reordered": (_text("results.csv", "status,trial_id,trial_dir,epochs_run,best_epoch,seconds\n"
                                                           "completed,b,trial_b,2,1,1\n"), "first columns"),
    "study.json garbage": (_text("study.json", "{not json"), "study.json"),
    "study.json a list": (_text("study.json", "[1, 2]"), "study.json"),
    "study.json empty": (_text("study.json", ""), "study.json"),
    "study.json is a folder": (_folder("study.json"), "study.json"),
    "study.json bad metric": (_study_json(metric="recall@abc"), "metric"),
    "study.json metric a number": (_study_json(metric=7), "metric"),
    "study.json no seed": (_study_json(seed=None), "seed"),
    "study.json trials text": (_study_json(trials="many"), "trials"),
    "study.json mg text": (_study_json(mg="yes"), "mg"),
    "best trial's params.json missing": (lambda s, o: (s / "trial_b" / "params.json").unlink(), "params.json"),
    "best trial's params.json garbage": (_text("trial_b/params.json", "[["), "params.json"),
}


@pytest.mark.parametrize("case", list(STUDY_CASES))
def test_a_damaged_study_is_one_line_for_confirm(case: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    study, outside = write_study(tmp_path / "runs"), tmp_path / "outside"
    outside.mkdir()
    damage, expected = STUDY_CASES[case]
    damage(study, outside)
    before, elsewhere = _snapshot(study) if case != "results.csv is a FIFO" else {}, _snapshot(outside)
    assert main(["confirm", str(study), "--seeds", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mgtune: error: "), err
    assert expected in err, err
    if before:
        assert _snapshot(study) == before  # nothing written, nothing lost
    assert _snapshot(outside) == elsewhere and not (study / "confirm").exists()


@pytest.mark.parametrize("case", ["trial_dir absolute", "trial_dir ../..", "trial_dir a link out",
                                  "results.csv cut mid-line", "study.json bad metric"])
def test_a_damaged_study_is_one_line_for_recommend(case: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    study, outside = write_study(tmp_path / "runs"), tmp_path / "outside"
    outside.mkdir()
    damage, expected = STUDY_CASES[case]
    damage(study, outside)
    assert main(["recommend", "--study", str(study), "--out", str(tmp_path / "rec.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


# ---------------------------------------------------------------- a confirmation read back
def _confirmed(tmp_path: Path, data_dir: Path) -> Path:
    study = confirmed_study(tmp_path / "runs", [0.22, 0.25, 0.23], [0.20, 0.22, 0.21])
    _study_json(data_dir=str(data_dir))(study, tmp_path)
    assert main(["confirm", str(study), "--seeds", "3", "--out", str(tmp_path / "cards")]) == 0  # no Ray: all done
    return study


def _confirm_rows(edit: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> Callable[[Path], None]:
    return lambda study: _rewrite(study / "confirm" / "results.csv", edit)


def _confirm_json(**changes: object) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / "confirm" / "confirm.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | changes))
    return damage


def _confirm_cut(cut: int) -> Callable[[Path], None]:
    def damage(study: Path) -> None:
        path = study / "confirm" / "results.csv"
        path.write_bytes(path.read_bytes()[:-cut])
    return damage


def _last_row_dropped(study: Path) -> None:
    path = study / "confirm" / "results.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # cut at a row's end: still ends with a newline


CONFIRM_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "cut mid-line": (_confirm_cut(9), "data row 6"),
    "last row dropped at a newline": (_last_row_dropped, "runs missing"),
    "one seed's rows removed": (_confirm_rows(lambda rows: [r for r in rows if r["seed"] != "1"]), "runs missing"),
    "a row doubled": (_confirm_rows(lambda rows: [*rows, rows[0]]), "repeats run"),
    "a seed it does not name": (_confirm_rows(lambda rows: [rows[0] | {"seed": "9"}, *rows[1:]]), "does not name"),
    "an arm it does not name": (_confirm_rows(lambda rows: [rows[0] | {"arm": "both"}, *rows[1:]]), "does not name"),
    "a seed that is text": (_confirm_rows(lambda rows: [rows[0] | {"seed": "abc"}, *rows[1:]]), "data row 1"),
    "a seed that is inf": (_confirm_rows(lambda rows: [rows[0] | {"seed": "inf"}, *rows[1:]]), "data row 1"),
    "header only": (_confirm_rows(lambda rows: []), "runs missing"),
    "confirm.json seeds a number": (_confirm_json(seeds=3), "confirm.json"),
    "confirm.json candidates text": (_confirm_json(candidates="b"), "confirm.json"),
    "confirm.json candidate without params": (_confirm_json(candidates=[{"rank": 1, "source_trial": "b",
                                                                          "valid": 0.3}]), "confirm.json"),
}


@pytest.mark.parametrize("case", list(CONFIRM_CASES))
def test_a_damaged_confirmation_is_refused_by_robustness(case: str, tmp_path: Path, tiny_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    study = _confirmed(tmp_path, tiny_dir)
    damage, expected = CONFIRM_CASES[case]
    damage(study)
    capsys.readouterr()
    before = _snapshot(study)
    assert main(["robustness", str(study), "--out", str(tmp_path / "rob")]) == 2  # never read as fewer seeds
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mgtune: error: ") and expected in err, err
    assert _snapshot(study) == before and not (study / "robustness").exists()


def test_an_interrupted_confirmation_may_lack_runs(tmp_path: Path, tiny_dir: Path) -> None:
    """Before it finished, fewer rows are what it is, not damage: read back as it is."""
    from mgtune.store.confirmation import load_confirmation

    study = _confirmed(tmp_path, tiny_dir)
    _confirm_json(finished=None)(study)
    _confirm_rows(lambda rows: [r for r in rows if r["seed"] != "2"])(study)
    conf = load_confirmation(study)
    assert conf is not None and len(conf.rows) == 2 * len(ARMS)


# ---------------------------------------------------------------- seeds
@pytest.mark.parametrize("argv", [
    ["run", "--model", "freedom", "--dataset", "tiny", "--seed", "-1"],
    ["robustness", "STUDY", "--seed", "-1"],
    ["robustness", "STUDY", "--seeds", "-3"],
    ["confirm", "STUDY", "--seeds", "-2"],
])
def test_negative_seeds_are_one_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path)
    argv = [str(study) if a == "STUDY" else a for a in argv]
    assert main([*argv, "--storage", str(tmp_path / "runs")] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed" in err, err
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the race: one run per folder
def _claim(folder: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    try:
        with claim_folder(Path(folder), "study.json", "study"):
            (Path(folder) / "study.json").write_text("{}")
            out.put("proceeded")
            time.sleep(1.0)
    except ConfigError as exc:
        out.put(f"refused: {exc}")


def test_two_runs_started_at_once_one_proceeds(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    folder = tmp_path / "runs" / "same"
    procs = [ctx.Process(target=_claim, args=(str(folder), barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(out.get(timeout=5) for _ in procs)
    assert results[0] == "proceeded", results
    assert results[1].startswith("refused: ") and "pid " in results[1], results  # names the holder


def test_a_folder_whose_holder_died_can_be_resumed(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                             "from mgtune.files import claim_folder\n"
                             f"with claim_folder(Path({str(folder)!r})):\n print('held', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, text=True, env=_ENV)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(ConfigError, match=r"in use by another mgtune run \(pid \d+"), claim_folder(folder):
        pass
    proc.kill()
    proc.wait()
    with claim_folder(folder):  # kill -9 left the lock file; the lock went with the process
        pass
    with pytest.raises(ConfigError, match="exists; continue it with --resume"):
        (folder / "study.json").write_text("{}")
        with claim_folder(folder, "study.json"):
            pass


# ---------------------------------------------------------------- orphans
def test_a_child_dies_with_its_killed_parent(tmp_path: Path) -> None:
    """The suite starts its studies so (`mgtune.processes.die_with_parent`): kill -9 of it stops them."""
    parent = subprocess.Popen([sys.executable, "-c", "import functools, os, subprocess, time\n"
                               "from mgtune.processes import die_with_parent\n"
                               "c = subprocess.Popen(['sleep', '120'], start_new_session=True, "
                               "preexec_fn=functools.partial(die_with_parent, os.getpid()))\n"
                               "print(c.pid, flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True, env=_ENV)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child}/stat") as fh:  # a zombie awaiting init's reap has ended
            if fh.read().rpartition(")")[2].split()[0] == "Z":
                return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the child outlived its parent")


_SUITE_STUDY = """import sys, time
from mgtune.files import sigterm_as_interrupt
from mgtune.processes import on_sigterm
try:
    with sigterm_as_interrupt(first=on_sigterm):  # as the CLI's
        print("ready", flush=True)
        time.sleep(30)
except KeyboardInterrupt:
    print("taken as Ctrl-C", file=sys.stderr)
"""

_DYING_SUITE = """import functools, os, subprocess, sys, threading, time
from mgtune.processes import die_with_parent, suite_env
def start():  # a thread of the suite starts the study; the study's SIGTERM comes when that thread ends
    c = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True,
                         stderr=open(sys.argv[2], "w"), env={**os.environ, **suite_env("mgtune run --resume k")},
                         preexec_fn=functools.partial(die_with_parent, os.getpid()))
    c.stdout.readline()
    print(c.pid, flush=True)
threading.Thread(target=start).start()
time.sleep(0.3)  # the rest of the suite lives on a little after that thread
os._exit(0)
"""


def test_a_study_told_of_its_suites_death_a_moment_early_still_ends_as_an_orphan(tmp_path: Path) -> None:
    """The kernel's parent-death signal comes when the suite's *thread* that started the study ends, which in a
    killed suite can be a moment before the suite is gone: the study waits for that, and ends with the line
    naming the suite's resume command (exit 130), not as a Ctrl-C of its own."""
    err = tmp_path / "study.err"
    suite = subprocess.run([sys.executable, "-c", _DYING_SUITE, _SUITE_STUDY, str(err)], capture_output=True,
                           text=True, env=_ENV, timeout=60)
    assert suite.returncode == 0, suite.stderr
    study = int(suite.stdout)
    deadline = time.monotonic() + 10
    while _running(study):
        assert time.monotonic() < deadline, "the study outlived its suite"
        time.sleep(0.05)
    last = err.read_text().strip().splitlines()[-1]
    assert last.startswith("mgtune: error: the suite that started this study") and \
        last.endswith("continue the suite with: mgtune run --resume k"), err.read_text()


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting init's reap has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
