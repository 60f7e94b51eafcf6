"""Models of one's own: a file (``--model-module``), an installed package (entry points ``mgtune.models``),
`mgtune models`, `mgtune.testing.check_model`, and broken plugins as one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mgtune.cli import main
from mgtune.data import load_dataset
from mgtune.models import get_model, load_model_file, model_names
from mgtune.models.registry import unregister
from mgtune.testing import check_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "feature_mf.py"
EXAMPLE_SPACE = ROOT / "docs" / "examples" / "feature_mf.yaml"
BUILT_IN = ["bm3", "dragon", "dualgnn", "freedom", "grcn", "itemknncbf", "lattice", "layergcn", "mgcn", "mmgcn",
            "mvgae", "selfcfed_lgn", "slmrec", "vbpr"]


def _forget_files() -> None:
    """Undo every model file this process imported (the registry as a fresh process has it)."""
    for name in [n for n in model_names() if n not in BUILT_IN]:
        unregister(name)
    for module in [m for m in sys.modules if m.startswith("mgtune_model_file_")]:
        del sys.modules[module]


@pytest.fixture
def clean_registry() -> Iterator[None]:
    _forget_files()
    yield
    _forget_files()
    assert model_names() == BUILT_IN


def test_the_documented_example_passes_the_contract(clean_registry: None) -> None:
    assert load_model_file(EXAMPLE) == ["feature_mf"]
    check_model(get_model("feature_mf"))


def test_a_model_file_trains_evaluates_and_recommends(clean_registry: None, tiny_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    module = ["--model-module", str(EXAMPLE)]
    assert main(["train", *module, "--model", "feature_mf", "--dataset", "tiny", "--data-dir", str(tiny_dir),
                 "--epochs", "2", "--set", "embedding_size=16", "--out", str(tmp_path / "t")]) == 0
    trained = json.loads(capsys.readouterr().out)
    ckpt = str(tmp_path / "t" / "checkpoint.pt")
    _forget_files()  # a fresh process: the model is unknown until the file is named again
    assert main(["eval", "--checkpoint", ckpt]) == 2
    assert "unknown model 'feature_mf'" in capsys.readouterr().err
    assert main(["eval", *module, "--checkpoint", ckpt]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == pytest.approx(trained["test"])
    assert main(["recommend", *module, "--checkpoint", ckpt, "--out", str(tmp_path / "r.csv"), "--k", "3"]) == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 3 * load_dataset(tiny_dir, "tiny").n_users


_MODEL = '''
from dataclasses import dataclass
import torch
from torch import nn
from mgtune.models import ModelConfig, Recommender, register

@dataclass(frozen=True)
class {name}Config(ModelConfig):
    size: int = 8

class {name}(Recommender):
    config_cls = {name}Config
    needs_modalities = "none"

    def __init__(self, data, cfg, device):
        super().__init__(data, cfg, device)
        self.user_emb = nn.Parameter(torch.randn(self.n_users, cfg.size) * 0.1)
        self.item_emb = nn.Parameter(torch.randn(self.n_items, cfg.size) * 0.1)

    def loss(self, batch):
        u = self.user_emb[batch.users]
        diff = (u * self.item_emb[batch.pos_items]).sum(1) - (u * self.item_emb[batch.neg_items]).sum(1)
        return -torch.nn.functional.logsigmoid(diff).mean()

    def score(self, users):
        return self.user_emb[users] @ self.item_emb.T
'''

BROKEN_FILES = {
    "import error": ("import not_a_module_xyz\n", "line 1: cannot be imported (ModuleNotFoundError: No module named "
                     "'not_a_module_xyz')"),
    "syntax error": ("x = 1\ndef (:\n", "line 2: cannot be imported (SyntaxError"),
    "wrong base class": ("from mgtune.models import register\n@register('plain')\nclass Plain:\n    pass\n",
                         "line 2: model 'plain' is <class"),
    "name clash": (_MODEL.format(name="Clash") + "register('freedom')(Clash)\n",
                   "model name 'freedom' is taken by the built-in model mgtune.models.freedom."),
    "missing config_cls": (_MODEL.format(name="NoCfg").replace("    config_cls = NoCfgConfig\n", "")
                           + "register('nocfg')(NoCfg)\n", "model 'nocfg' (NoCfg) has no config_cls of its own"),
    "registers nothing": ("X = 1\n", "registers no model; decorate your Recommender subclass with @register"),
    "half registered": (_MODEL.format(name="Good") + "register('good')(Good)\nraise RuntimeError('then it broke')\n",
                        "cannot be imported (RuntimeError: then it broke)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_broken_model_file_is_one_line_and_the_built_ins_still_work(
        case: str, clean_registry: None, tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, message = BROKEN_FILES[case]
    path = tmp_path / "mine.py"
    path.write_text(text)
    code = main(["train", "--model-module", str(path), "--model", "freedom", "--dataset", "tiny", "--data-dir",
                 str(tiny_dir), "--epochs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"mgtune: error: {path}"), err
    assert message in err[0], err
    assert not (tmp_path / "out").exists()
    assert model_names() == BUILT_IN and not [m for m in sys.modules if m.startswith("mgtune_model_file_")]
    assert main(["train", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir), "--epochs", "1",
                 "--out", str(tmp_path / "ok")]) == 0


def _install(site: Path, dist: str, module: str, source: str, entries: dict[str, str]) -> None:
    """A package as pip leaves it: its module and a dist-info folder with the entry points."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mgtune.models]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))


def _mgtune(site: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mgtune.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture
def good_plugin(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    _install(site, "mgtune-demo-plugin", "mgtune_demo_plugin", _MODEL.format(name="DemoMF"),
             {"demo_mf": "mgtune_demo_plugin:DemoMF"})
    return site


def test_mgtune_models_lists_built_ins_and_plugins_and_names_each_broken_one(good_plugin: Path, tiny_dir: Path,
                                                                              tmp_path: Path) -> None:
    _install(good_plugin, "mgtune-bad-plugins", "mgtune_bad_plugins",
             _MODEL.format(name="NoCfg").replace("    config_cls = NoCfgConfig\n", "") + "helper = 3\n"
             + _MODEL.format(name="Twin"),
             {"broken_import": "mgtune_missing_module:Model", "freedom": "mgtune_bad_plugins:Twin",
              "not_a_model": "mgtune_bad_plugins:helper", "no_config": "mgtune_bad_plugins:NoCfg"})
    proc = _mgtune(good_plugin, "models")
    assert proc.returncode == 2, proc.stderr
    table = [line.split() for line in proc.stdout.splitlines()]
    assert table[0] == ["model", "needs", "trained", "from"]
    rows = {r[0]: r for r in table[1:]}
    assert sorted(rows) == sorted([*BUILT_IN, "demo_mf"])
    assert " ".join(rows["demo_mf"][1:]) == "none yes package mgtune-demo-plugin"
    assert " ".join(rows["mgcn"][1:]) == "image and text yes built-in"
    assert " ".join(rows["itemknncbf"][1:]) == "image or text no built-in"
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("mgtune: error: model plugin '") for e in errors), errors
    said = {name: next(e for e in errors if f"model plugin '{name}' " in e)
            for name in ("broken_import", "freedom", "not_a_model", "no_config")}
    assert "cannot be imported (ModuleNotFoundError" in said["broken_import"]
    assert "model name 'freedom' is taken by the built-in model" in said["freedom"]
    assert "not a subclass of mgtune.models.Recommender" in said["not_a_model"]
    assert "has no config_cls of its own" in said["no_config"]
    # the built-in models still work with the broken plugins installed; a broken one asked for is one line
    ok = _mgtune(good_plugin, "train", "--model", "freedom", "--dataset", "tiny", "--data-dir", str(tiny_dir),
                 "--epochs", "1", "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr
    bad = _mgtune(good_plugin, "train", "--model", "broken_import", "--dataset", "tiny", "--data-dir", str(tiny_dir))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "model plugin 'broken_import' (mgtune_missing_module:Model, package mgtune-bad-plugins)" in bad.stderr


def _trial_dir(study: Path) -> Path:
    rows = pd.read_csv(study / "results.csv")
    assert rows["status"].tolist() == ["completed"], rows.to_dict("records")
    return study / str(rows["trial_dir"].iloc[0])


@pytest.mark.ray
def test_a_plugin_package_runs_a_study_on_ray_workers(good_plugin: Path, tiny_dir: Path, tmp_path: Path) -> None:
    space = tmp_path / "demo_mf.yaml"
    space.write_text("model: demo_mf\nparams:\n  flip_interval: {type: int, low: 1, high: 5}\n"
                     "  batch_size: {type: categorical, choices: [256]}\n  size: {type: categorical, choices: [8]}\n")
    proc = _mgtune(good_plugin, "run", "--model", "demo_mf", "--dataset", "tiny", "--data-dir", str(tiny_dir),
                   "--trials", "1", "--max-epochs", "2", "--grace-epochs", "1", "--search-space", str(space),
                   "--storage", str(tmp_path / "runs"), "--name", "p", "--cpus-per-trial", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = tmp_path / "runs" / "p"
    assert (_trial_dir(study) / "weights.pt").is_file()
    rec = _mgtune(good_plugin, "recommend", "--study", str(study), "--out", str(tmp_path / "r.csv"), "--k", "2")
    assert rec.returncode == 0, rec.stderr
    n_users = load_dataset(tiny_dir, "tiny").n_users
    assert json.loads(rec.stdout)["weights"].endswith("weights.pt")
    assert len(pd.read_csv(tmp_path / "r.csv")) == 2 * n_users
    (_trial_dir(study) / "weights.pt").unlink()
    gone = _mgtune(good_plugin, "recommend", "--study", str(study), "--out", str(tmp_path / "r2.csv"))
    assert gone.returncode == 2 and len(gone.stderr.strip().splitlines()) == 1, gone.stderr
    assert "kept no weights" in gone.stderr and f"mgtune confirm {study}" in gone.stderr
    assert not (tmp_path / "r2.csv").exists()


@pytest.mark.ray
def test_a_model_file_runs_a_study_on_ray_workers(tiny_dir: Path, tmp_path: Path) -> None:
    site = tmp_path / "empty"
    site.mkdir()
    proc = _mgtune(site, "run", "--model-module", os.path.relpath(EXAMPLE), "--model", "feature_mf", "--dataset",
                   "tiny", "--data-dir", str(tiny_dir), "--trials", "1", "--max-epochs", "2", "--grace-epochs", "1",
                   "--search-space", str(EXAMPLE_SPACE), "--storage", str(tmp_path / "runs"), "--name", "f")
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = tmp_path / "runs" / "f"
    assert json.loads((study / "study.json").read_text())["model_module"] == str(EXAMPLE)  # absolute
    assert (_trial_dir(study) / "weights.pt").is_file()
    rec = _mgtune(site, "recommend", "--study", str(study), "--out", str(tmp_path / "r.parquet"), "--k", "2")
    assert rec.returncode == 0, rec.stderr  # the study's recorded file is imported again
    assert len(pd.read_parquet(tmp_path / "r.parquet")) == 2 * load_dataset(tiny_dir, "tiny").n_users
