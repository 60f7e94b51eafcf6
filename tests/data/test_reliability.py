"""The data layer under faults (issue 23): links, full and read-only disks, killed runs, overflows, FIFOs, SIGTERM.

Each test goes through the command line (`mgtune.cli.main`, or a fresh process where the fault would kill the
test's own: a SIGBUS, a SIGKILL, a SIGTERM) and checks the one line, the exit code and what is left on disk.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_faults import cli_env, item_ids, no_hang, one_error, run_cli, state, write_log
from disk_faults import small_disk

from mgtune.cli import main
from mgtune.data import load_dataset


def _prepare(data: Path, log: Path, *extra: str, name: str = "mine") -> list[str]:
    return ["data", "prepare", "--interactions", str(log), "--name", name, "--data-dir", str(data), *extra]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    write_log(path)
    return path


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- a dataset name that is a symbolic link
@pytest.mark.parametrize("command", ["prepare", "synth"])
@pytest.mark.parametrize("where", ["inside", "outside", "dangling"])
def test_force_on_a_link_replaces_neither_the_link_nor_its_target(command: str, where: str, tmp_path: Path,
                                                                   log: Path, capsys: pytest.CaptureFixture[str]
                                                                   ) -> None:
    """Refused, with or without --force: the folder a link points to may hold more than one dataset."""
    data = tmp_path / "data"
    data.mkdir()
    target = (data if where == "inside" else tmp_path / "elsewhere") / "real"
    if where != "dangling":
        target.mkdir(parents=True)
        (target / "precious.txt").write_text("not a dataset file; must survive")
    (data / "mine").symlink_to(target)
    argv = (_prepare(data, log) if command == "prepare" else
            ["data", "synth", "--preset", "tiny", "--name", "mine", "--data-dir", str(data)])
    before = state(tmp_path)
    for force in ([], ["--force"]):
        assert main([*argv, *force]) == 2
        message = one_error(capsys.readouterr().err)
        assert message.startswith(f"{data / 'mine'}: is a symbolic link (to {target})"), message
        assert state(tmp_path) == before


def test_a_dataset_behind_a_link_is_read_through_it(tmp_path: Path, log: Path) -> None:
    assert main(_prepare(tmp_path / "elsewhere", log, name="real")) == 0
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real").symlink_to(tmp_path / "elsewhere" / "real")
    data = load_dataset(tmp_path / "data", "real")
    assert data.path == tmp_path / "data" / "real" and data.n_items == 30


# ---------------------------------------------------------------- full and read-only disks
def test_a_full_disk_while_writing_features_is_one_line_and_keeps_the_old_dataset(tmp_path: Path, log: Path) -> None:
    """A writable memory map on a full disk dies of SIGBUS: a fresh process, so that the test survives it on main."""
    np.save(tmp_path / "big.npy", np.ones((30, 20_000), dtype=np.float32))  # 2.4 MB
    (tmp_path / "ids.txt").write_text("\n".join(item_ids()) + "\n")
    with small_disk(tmp_path / "disk", "2m") as data:
        assert main(_prepare(data, log)) == 0
        before = state(data)
        done = run_cli(*_prepare(data, log, "--force", "--image-features", str(tmp_path / "big.npy"),
                                 "--image-ids", str(tmp_path / "ids.txt")))
        assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
        message = one_error(done.stderr)
        assert message.startswith(f"{data / 'mine'}: cannot write: the disk is full (ENOSPC"), message
        assert "the old folder is kept, the temp folder removed" in message
        assert state(data) == before


def test_a_full_disk_while_writing_the_interactions_is_one_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "big.csv"
    write_log(log, n_users=4000)  # a .inter of about 500 KB
    with small_disk(tmp_path / "disk", "256k") as data:
        assert main(_prepare(data, log)) == 2
        message = one_error(capsys.readouterr().err)
        assert message.startswith(f"{data / 'mine'}: cannot write: the disk is full (ENOSPC"), message
        assert "nothing was written" in message
        assert state(data) == {}


def test_synth_on_a_full_disk_is_one_line(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "16k") as data:  # tiny's image features are 19 KB
        done = run_cli("data", "synth", "--preset", "tiny", "--name", "t", "--data-dir", str(data))
        assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
        assert one_error(done.stderr).startswith(f"{data / 't'}: cannot write: the disk is full (ENOSPC")
        assert state(data) == {}


@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_a_read_only_or_file_data_dir_is_one_line(command: str, tmp_path: Path, log: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("x")

    def argv(data: Path) -> list[str]:
        return (_prepare(data, log) if command == "prepare" else
                ["data", "synth", "--preset", "tiny", "--name", "mine", "--data-dir", str(data)])

    assert main(argv(tmp_path / "a-file")) == 2
    assert "is a file, not a folder" in one_error(capsys.readouterr().err)
    with small_disk(tmp_path / "ro", "1m", read_only=True) as data:
        assert main(argv(data)) == 2
        message = one_error(capsys.readouterr().err)
        assert message.startswith(f"--data-dir {data}: cannot write in {data} (Read-only file system)"), message


# ---------------------------------------------------------------- temp folders of killed runs
_DIE_IN_GRAPH = """
import os, signal
import mgtune.data.prepare as prepare
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
prepare.write_user_graph_dict = die
"""

_DIE_AFTER_SETTING_ASIDE = """
import os, signal
rename = os.rename
def rename_then_die(src, dst):
    rename(src, dst)
    if str(dst).endswith(".old"):
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename_then_die
"""

_HOLD = """
import sys
from pathlib import Path
from mgtune.files import replace_dir
def build(tmp):
    (tmp / "part").write_text("half")
    print("building", flush=True)
    sys.stdin.readline()
replace_dir(Path(sys.argv[1]), build)
"""


def test_the_temp_folder_of_a_killed_prepare_goes_on_the_next_run(tmp_path: Path, log: Path) -> None:
    data = tmp_path / "data"
    done = run_cli(*_prepare(data, log), code=_DIE_IN_GRAPH)
    assert done.returncode == -signal.SIGKILL
    assert len(_temps(data)) == 1 and not (data / "mine").exists()
    assert main(_prepare(data, log, name="other")) == 0
    assert sorted(p.name for p in data.iterdir()) == ["other"]


def test_a_running_prepares_temp_folder_is_kept(tmp_path: Path, log: Path) -> None:
    data = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(data / "busy")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "building\n"
        busy = _temps(data)
        assert len(busy) == 1
        assert main(_prepare(data, log)) == 0
        assert _temps(data) == busy and (data / busy[0] / "part").read_text() == "half"
    finally:
        holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0
    assert sorted(p.name for p in data.iterdir()) == ["busy", "mine"]


def test_a_swap_cut_short_by_kill_gets_the_old_dataset_back(tmp_path: Path, log: Path) -> None:
    """Killed between setting the old folder aside and renaming the new one in: the old one is the only copy."""
    data = tmp_path / "data"
    assert main(_prepare(data, log)) == 0
    before = state(data / "mine")
    done = run_cli(*_prepare(data, log, "--force", "--seed", "3"), code=_DIE_AFTER_SETTING_ASIDE)
    assert done.returncode == -signal.SIGKILL
    assert not (data / "mine").exists() and len(_temps(data)) == 2
    assert main(_prepare(data, log, name="other")) == 0
    assert sorted(p.name for p in data.iterdir()) == ["mine", "other"]
    assert state(data / "mine") == before


# ---------------------------------------------------------------- SIGTERM acts as Ctrl-C
_TERM_IN_GRAPH = """
import os, signal
import mgtune.data.prepare as prepare
write = prepare.write_user_graph_dict
def term(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return write(*args, **kwargs)
prepare.write_user_graph_dict = term
"""

_TERM_IN_SYNTH = """
import os, signal
import mgtune.data.synth as synth
write = synth.write_dataset
def term(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return write(*args, **kwargs)
synth.write_dataset = term
"""


@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_sigterm_is_an_interrupt_that_removes_the_temp_folder(command: str, tmp_path: Path, log: Path) -> None:
    data = tmp_path / "data"
    argv = (_prepare(data, log) if command == "prepare" else
            ["data", "synth", "--preset", "tiny", "--name", "mine", "--data-dir", str(data)])
    assert main(argv) == 0
    before = state(data)
    done = run_cli(*argv, "--force", code=_TERM_IN_GRAPH if command == "prepare" else _TERM_IN_SYNTH)
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert done.stderr.strip().splitlines() == ["mgtune: interrupted"]
    assert state(data) == before


# ---------------------------------------------------------------- silently wrong values
def test_features_beyond_float32_are_refused_at_prepare_time(tmp_path: Path, log: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    values = np.ones((30, 4))
    values[6, 2] = 1e39  # finite as float64, inf as float32
    np.save(tmp_path / "f.npy", values)
    (tmp_path / "ids.txt").write_text("\n".join(item_ids()) + "\n")
    data = tmp_path / "data"
    assert main(_prepare(data, log, "--image-features", str(tmp_path / "f.npy"), "--image-ids",
                         str(tmp_path / "ids.txt"))) == 2
    assert one_error(capsys.readouterr().err) == (f"{tmp_path / 'f.npy'}: NaN or infinite feature values in row 7 "
                                                  "(id 'item06') (beyond float32's range, +-3.4e38)")
    assert state(data) == {}


@pytest.mark.parametrize("stamp", ["inf", "-inf", "Infinity"])
@pytest.mark.parametrize("split", ["time", "random"])
def test_an_infinite_timestamp_is_refused(stamp: str, split: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    frame = write_log(tmp_path / "log.csv").astype({"timestamp": object})
    frame.loc[4, "timestamp"] = stamp
    frame.to_csv(tmp_path / "log.csv", index=False)
    assert main(_prepare(tmp_path / "data", tmp_path / "log.csv", "--split", split)) == 2
    assert one_error(capsys.readouterr().err) == (f"{tmp_path / 'log.csv'}: column 'timestamp' must hold finite "
                                                  f"numbers or dates, got '{stamp}' on data row 5")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_min_rating_is_refused(value: str, tmp_path: Path, log: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_prepare(tmp_path / "data", log, f"--min-rating={value}")) == 2
    assert one_error(capsys.readouterr().err).startswith(f"--min-rating must be a finite number, got {value}")
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- special files never block
def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _fifo_case(case: str, tmp_path: Path, log: Path) -> tuple[list[str], Path]:
    """The arguments of ``case`` and the FIFO it names (the path the message must start with)."""
    data = tmp_path / "data"
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(item_ids()) + "\n")
    np.save(tmp_path / "f.npy", np.ones((30, 4), dtype=np.float32))
    if case == "interactions":
        return _prepare(data, _fifo(tmp_path / "fifo.csv")), tmp_path / "fifo.csv"
    if case == "id list":
        return _prepare(data, log, "--image-features", str(tmp_path / "f.npy"), "--image-ids",
                        str(_fifo(tmp_path / "fifo.txt"))), tmp_path / "fifo.txt"
    if case in ("npy features", "csv features"):
        fifo = _fifo(tmp_path / ("fifo.npy" if case == "npy features" else "fifo.csv"))
        extra = ["--image-ids", str(ids)] if case == "npy features" else []
        return _prepare(data, log, "--text-features", str(fifo), *extra), fifo
    if case == "item text":
        return _prepare(data, log, "--item-text", str(_fifo(tmp_path / "fifo.csv"))), tmp_path / "fifo.csv"
    if case in ("recbole .inter", "recbole .item"):
        folder = tmp_path / "films"
        folder.mkdir()
        if case == "recbole .inter":
            return ["data", "prepare", "--recbole", str(folder), "--data-dir", str(data)], _fifo(folder / "films.inter")
        (folder / "films.inter").write_text("user_id:token\titem_id:token\n" + "".join(
            f"u{u}\ti{i}\n" for u in range(6) for i in range(6)))
        return ["data", "prepare", "--recbole", str(folder), "--data-dir", str(data)], _fifo(folder / "films.item")
    if case == "amazon ratings":
        return (["data", "prepare", "--amazon", str(tmp_path / "raw"), "--category", "Baby", "--name", "b",
                 "--data-dir", str(data)], _fifo(tmp_path / "raw" / "ratings_Baby.csv"))
    assert main(_prepare(data, log, "--image-features", str(tmp_path / "f.npy"), "--image-ids", str(ids))) == 0
    folder = data / "mine"
    victim = folder / {"dataset image_feat.npy": "image_feat.npy", "dataset text_feat.npy": "text_feat.npy",
                       "dataset .inter": "mine.inter"}[case]
    victim.unlink(missing_ok=True)
    return (["train", "--model", "vbpr", "--dataset", "mine", "--data-dir", str(data), "--epochs", "1", "--out",
             str(tmp_path / "out")], _fifo(victim))


FIFO_CASES = ["interactions", "id list", "npy features", "csv features", "item text", "recbole .inter",
              "recbole .item", "amazon ratings", "dataset image_feat.npy", "dataset text_feat.npy", "dataset .inter"]


@pytest.mark.parametrize("case", FIFO_CASES)
def test_a_fifo_is_refused_without_opening_it(case: str, tmp_path: Path, log: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv, fifo = _fifo_case(case, tmp_path, log)
    capsys.readouterr()
    with no_hang(60):
        assert main(argv) == 2
    message = one_error(capsys.readouterr().err)
    assert message.startswith(f"{fifo}: ") and message.endswith(
        "is a FIFO (named pipe), not a regular file (reading it would block)"), message
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "data").exists() or _temps(tmp_path / "data") == []


def test_a_huge_user_graph_k_is_refused(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_prepare(tmp_path / "data", log, "--user-graph-k", str(10**9))) == 2
    assert one_error(capsys.readouterr().err) == "--user-graph-k must be >= 0 and <= 1000, got 1000000000"


# ---------------------------------------------------------------- tracebacks that are now one line
def _amazon(folder: Path, meta: bytes | None = None, reviews: bytes | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if reviews is not None:
        (folder / "reviews_Baby_5.json.gz").write_bytes(reviews)
    else:
        (folder / "ratings_Baby.csv").write_text("".join(f"A{u},B{i},5,{1_400_000_000 + u * 10 + i}\n"
                                                         for u in range(8) for i in range(8)))
    if meta is not None:
        (folder / "meta_Baby.json.gz").write_bytes(meta)


_REVIEW = b'{"reviewerID": "A1", "asin": "B1", "overall": 5, "unixReviewTime": 1}\n'
AMAZON = {  # case: (meta bytes, reviews bytes, the file, the message after "PATH: ")
    "deep nesting": (gzip.compress(b'{"asin": "B1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"), None,
                     "meta", "line 1 is neither JSON nor a Python literal (SyntaxError: too many nested parentheses"),
    "deep nesting in reviews": (None, gzip.compress(_REVIEW + b'{"reviewerID": ' + b"[" * 99_999 + b"]" * 99_999
                                                    + b"}\n"), "reviews",
                                "line 2 is neither JSON nor a Python literal"),
    "unhashable literal": (gzip.compress(b"{'asin': 'B1', {'a': 1}: 2}\n"), None, "meta",
                           "line 1 is neither JSON nor a Python literal (TypeError: unhashable type: 'dict')"),
    "not gzip": (b"{'asin': 'B1'}\n", None, "meta", "Amazon file is not gzip data, though its name ends in .gz"),
    "truncated gzip": (gzip.compress(b"{'asin': 'B1', 'title': 'x'}\n" * 500)[:-30], None, "meta",
                       "Amazon file is a truncated gzip file"),
    "non-UTF-8 meta": (gzip.compress("{'asin': 'B1', 'title': 'caf\xe9'}\n".encode("latin-1")), None, "meta",
                       "Amazon file is not UTF-8 text (line 1: invalid continuation byte)"),
    "non-UTF-8 reviews": (None, gzip.compress(_REVIEW + b'{"reviewerID": "\xff"}\n'), "reviews",
                          "Amazon file is not UTF-8 text (line 2: invalid start byte)"),
    "truncated reviews": (None, gzip.compress(_REVIEW * 400)[:-25], "reviews", "Amazon file is a truncated gzip file"),
}


@pytest.mark.parametrize("case", sorted(AMAZON))
def test_bad_amazon_files_are_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta, reviews, which, message = AMAZON[case]
    _amazon(tmp_path / "raw", meta, reviews)
    code = main(["data", "prepare", "--amazon", str(tmp_path / "raw"), "--category", "Baby", "--name", "b",
                 "--data-dir", str(tmp_path / "data"), "--core", "1", "--user-graph-k", "0"])
    assert code == 2
    file = tmp_path / "raw" / ("meta_Baby.json.gz" if which == "meta" else "reviews_Baby_5.json.gz")
    got = one_error(capsys.readouterr().err)
    assert got.startswith(f"{file}: {message}"), got
    assert not (tmp_path / "data").exists() or state(tmp_path / "data") == {}


def test_negative_seed_non_utf8_ids_and_list_cells_are_one_line(tmp_path: Path, log: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    data = tmp_path / "data"
    assert main(_prepare(data, log, "--seed", "-1")) == 2
    assert one_error(capsys.readouterr().err) == "--seed must be >= 0 and <= 4294967295, got -1"

    np.save(tmp_path / "f.npy", np.ones((30, 4), dtype=np.float32))
    (tmp_path / "ids.txt").write_bytes("\n".join(item_ids()).replace("item05", "it\xe9m05").encode("latin-1"))
    assert main(_prepare(data, log, "--image-features", str(tmp_path / "f.npy"), "--image-ids",
                         str(tmp_path / "ids.txt"))) == 2
    assert one_error(capsys.readouterr().err) == (f"{tmp_path / 'ids.txt'}: id list is not UTF-8 text (line 6: "
                                                  "invalid continuation byte); save it as UTF-8")

    frame = pd.read_csv(log)
    frame.assign(user_id=[[u] for u in frame.user_id]).to_parquet(tmp_path / "lists.parquet")
    assert main(_prepare(data, tmp_path / "lists.parquet")) == 2
    assert one_error(capsys.readouterr().err) == (f"{tmp_path / 'lists.parquet'}: column 'user_id' holds a ndarray on "
                                                  "data row 1 (array(['user0'], dtype=object)); an id is one value")
    features = pd.DataFrame({"item_id": item_ids(), "a": 1.0, "v": [[1.0, 2.0]] * 30})
    features.to_parquet(tmp_path / "f.parquet")
    assert main(_prepare(data, log, "--image-features", str(tmp_path / "f.parquet"))) == 2
    assert one_error(capsys.readouterr().err).startswith(
        f"{tmp_path / 'f.parquet'}: feature column 'v' has non-numeric value array([1., 2.]) on data row 1; an array "
        "of values goes alone, in the only feature column")
    features.assign(item_id=[[i] for i in item_ids()])[["item_id", "a"]].to_parquet(tmp_path / "g.parquet")
    assert main(_prepare(data, log, "--image-features", str(tmp_path / "g.parquet"))) == 2
    assert "column 'item_id' holds a ndarray on data row 1" in one_error(capsys.readouterr().err)
    assert not data.exists() or state(data) == {}
