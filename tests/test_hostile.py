"""Hostile folders, bad values and interruptions (issue #14): no code from a folder runs, nothing is
unpickled, no silent number, and every error is a named ``HfCausalError`` (exit code 2 in the CLI)."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import hf_causal
from hf_causal import ArtefactError, CausalEngine, CausalWarning, DataError, GraphError, QueryError, train
from hf_causal.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
Q = ["--target", "recovery", "--do", "treatment=1", "--num-samples", "20"]


# --- folders that ask to run code ------------------------------------------------------------------
def _hostile_copy(src: Path, dst: Path, where: str) -> Path:
    """A copy of a model folder whose config asks transformers to import ``evil.py``, which would
    leave a marker file behind."""
    shutil.copytree(src, dst)
    marker = dst / "EXECUTED"
    (dst / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('code from the folder ran')\n"
        "from transformers import PretrainedConfig, PreTrainedTokenizerFast\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
        "class EvilTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    f = dst / where
    cfg = json.loads(f.read_text())
    if where == "config.json":
        cfg.update(model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.X"})
    else:
        cfg.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", None]})
    f.write_text(json.dumps(cfg))
    return dst


LOADERS = {
    "load": "import hf_causal; hf_causal.load({d!r})",
    "pipeline": "import hf_causal; hf_causal.pipeline({d!r})",
    "transformers.pipeline": "import hf_causal\nfrom transformers import pipeline\npipeline('causal-inference', model={d!r})",
    "cli": "import sys; from hf_causal.cli import main; sys.exit(main(['query', {d!r}, '--target', 'recovery']))",
}
# one interpreter runs every loader in turn (imports once), each between markers, reporting how it ended
_RUNNER = """
import sys, traceback
for name, code in {loaders!r}.items():
    print("@@begin", name, flush=True)
    rc = 0
    try:
        exec(code, {{"__name__": "__loader__"}})
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        rc = 1
    print("@@end", name, rc, flush=True)
"""


def _run(code: str, tty: bool) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # stdout and stderr in order
    if not tty:
        p = subprocess.run(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        return p.stdout
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout are the pseudo-terminal, as in an interactive shell
        os.execve(sys.executable, [sys.executable, "-c", code], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if b"[y/N]" in out:  # a prompt: answer yes, as a careless user would
            os.write(fd, b"y\n")
    os.waitpid(pid, 0)
    return out.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
@pytest.mark.parametrize("tty", [False, True], ids=["no-terminal", "pty"])
def test_folder_code_never_runs(tiny_model_dir, tmp_path, where, tty):
    d = _hostile_copy(tiny_model_dir, tmp_path / "hostile", where)
    out = _run(_RUNNER.format(loaders={k: v.format(d=str(d)) for k, v in LOADERS.items()}), tty)
    assert not (d / "EXECUTED").exists(), f"the folder's code ran: {out[-800:]}"
    for name in LOADERS:
        begun = out.split(f"@@begin {name}\n", 1)
        section = begun[-1].split(f"@@end {name} ", 1)
        assert len(begun) == 2 and len(section) == 2, f"{name}: did not run to its end: {out[-800:]}"
        said, rc = section[0], int(section[1].split()[0])
        assert rc != 0 and "[y/N]" not in said, f"{name}: {said[-500:]}"
        assert "asks to run Python code from the folder" in said, f"{name}: {said[-800:]}"
        if name == "cli":
            assert rc == 2 and "Traceback" not in said


def test_pickled_weights_are_refused_and_never_unpickled(tiny_model_dir, tmp_path, monkeypatch):
    import torch

    d = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, d)
    (d / "model.safetensors").rename(d / "pytorch_model.bin")
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(ArtefactError, match=r"pytorch_model.bin but no model.safetensors.*never unpickles"):
        hf_causal.load(d)
    with pytest.raises(ArtefactError, match="pytorch_model.bin"):
        hf_causal.pipeline(d)
    assert not calls


def test_no_loading_path_calls_torch_load(tiny_model_dir, tmp_path, monkeypatch):
    """Full weights, a LoRA adapter over a base, and both pipeline routes load without torch.load."""
    import torch
    from transformers import pipeline

    from hf_causal.testing import tiny_gpt2_checkpoint

    base = tiny_gpt2_checkpoint(tmp_path / "gpt2")
    adapter = train(
        {
            "world": "demo",
            "world_rows": 100,
            "base_model": str(base),
            "num_train_epochs": 1,
            "output_dir": str(tmp_path / "adapter"),
            "logging_steps": 10**6,
        }
    )

    def forbidden(*a, **k):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", forbidden)
    for d in (tiny_model_dir, adapter):
        hf_causal.load(d).query("recovery", do={"treatment": 1}, num_samples=4)
        hf_causal.pipeline(d)({"target": "recovery"}, num_samples=4)
        pipeline("causal-inference", model=str(d))({"target": "recovery"}, num_samples=4)


# --- corrupt and incomplete folders ------------------------------------------------------------------
@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "causal_config.json").write_text('{"graph": '), r"causal_config.json is not valid JSON"),
        (lambda d: (d / "causal_config.json").write_text("[1, 2]"), r"causal_config.json must hold a JSON object"),
        (
            lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
            r"model.safetensors is truncated or not a safetensors file",
        ),
        (lambda d: (d / "model.safetensors").write_bytes(os.urandom(5000)), r"model.safetensors is truncated"),
        (lambda d: (d / "tokenizer.json").unlink(), r"has no tokenizer.json"),
        (lambda d: (d / "model.safetensors").unlink(), r"has no model.safetensors"),
        (
            lambda d: (d / "causal_config.json").write_text(
                json.dumps({**json.loads((d / "causal_config.json").read_text()), "format_version": 99})
            ),
            r"format_version 99 .* Install the matching hf_causal version",
        ),
    ],
    ids=[
        "truncated-config",
        "config-not-object",
        "truncated-weights",
        "random-weights",
        "no-tokenizer",
        "no-weights",
        "format-version",
    ],
)
def test_corrupt_folders_name_the_file(tiny_model_dir, tmp_path, capsys, damage, message):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    damage(d)
    with pytest.raises(ArtefactError, match=message):
        hf_causal.load(d)
    with pytest.raises(ArtefactError, match=message):
        hf_causal.pipeline(d)
    assert cli_main(["query", str(d), *Q]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_missing_local_folder_is_not_a_hub_lookup(tmp_path):
    for target in (tmp_path / "nothing", str(tmp_path / "nothing"), "./no/such/model/here"):
        with pytest.raises(ArtefactError, match="no such folder"):
            hf_causal.load(target)
        with pytest.raises(ArtefactError, match="no such folder"):
            hf_causal.pipeline(target)


# --- values the model cannot represent ----------------------------------------------------------------
@pytest.fixture(scope="module")
def continuous_engine(tiny_continuous_model_dir):
    return tiny_continuous_model_dir


def test_out_of_range_continuous_values_are_refused_or_marked(continuous_engine):
    eng = CausalEngine.from_pretrained(continuous_engine)
    lo, hi = eng.graph["stay"].edges[0], eng.graph["stay"].edges[-1]
    with pytest.raises(
        QueryError, match=rf"do: variable 'stay': value 1e\+06 is outside the range seen in training \[{lo:g}, {hi:g}\]"
    ):
        eng.query("readmitted", do={"stay": 1e6}, num_samples=8)
    with pytest.raises(QueryError, match=r"given: variable 'stay': value -50 is outside"):
        eng.expectation("readmitted", given={"stay": -50}, num_samples=8)
    inside = eng.query("readmitted", do={"stay": (lo + hi) / 2}, num_samples=8)
    assert "extrapolated" not in inside.diagnostics
    brave = CausalEngine.from_pretrained(continuous_engine, extrapolate=True)
    with pytest.warns(CausalWarning, match=r"outside the range seen in training.*extrapolation"):
        d = brave.query("readmitted", do={"stay": 1e6}, num_samples=8)
    assert d.diagnostics["extrapolated"]["do[stay]"] == {"value": 1e6, "fitted_range": [lo, hi]}


def test_cli_extrapolate_flag(continuous_engine, capsys):
    args = ["query", str(continuous_engine), "--target", "readmitted", "--do", "stay=1000000", "--num-samples", "4"]
    assert cli_main(args) == 2
    assert "outside the range seen in training" in capsys.readouterr().err
    assert cli_main([*args, "--extrapolate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"]["extrapolated"]["do[stay]"]["value"] == 1e6


# --- graph files ---------------------------------------------------------------------------------------
def test_duplicate_keys_in_graph_files(tmp_path):
    y = tmp_path / "g.yaml"
    y.write_text(
        "variables:\n  a: {type: categorical, values: [0, 1]}\n  b: {type: categorical, values: [0, 1]}\n"
        "  a: {type: integer, min: 0, max: 3}\nedges: [[a, b]]\n"
    )
    with pytest.raises(GraphError, match=rf"{y}, line 4: key 'a' appears twice.*first on line 2"):
        hf_causal.CausalGraph.from_file(y)
    j = tmp_path / "g.json"
    j.write_text(
        '{"variables": {"a": {"type": "categorical", "values": [0]}, "a": {"type": "categorical", "values": [1]}}}'
    )
    with pytest.raises(GraphError, match=rf"{j}: key 'a' appears twice"):
        hf_causal.CausalGraph.from_file(j)


# --- the command line -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--do", "treatment=1", "--do", "treatment=0"], r"--do names 'treatment' twice"),
        (["--given", "age=old", "--given", "age=young"], r"--given names 'age' twice"),
        (["--num-samples", "0"], r"must be at least 1, got 0"),
        (["--num-samples", "-5"], r"must be at least 1, got -5"),
        (["--do", "treatment"], r"--do expects NAME=VALUE"),
        (["--batch-size", "0"], r"must be at least 1"),
    ],
)
def test_cli_usage_errors_exit_2(tiny_model_dir, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        cli_main(["query", str(tiny_model_dir), "--target", "recovery", *argv])
    assert e.value.code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_sample_count_and_output_errors(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["sample", str(tiny_model_dir), "-n", "-5", "-o", str(tmp_path / "x.csv")])
    assert e.value.code == 2 and not (tmp_path / "x.csv").exists()
    with pytest.raises(SystemExit) as e:
        cli_main(["sample", str(tiny_model_dir), "-n", "5", "-o", str(tmp_path)])
    assert e.value.code == 2 and "is a folder" in capsys.readouterr().err
    eng = CausalEngine.from_pretrained(tiny_model_dir)
    for n in (0, -3):
        with pytest.raises(QueryError, match="positive integer"):
            eng.query("recovery", num_samples=n)
        with pytest.raises(QueryError, match="positive integer"):
            eng.sample(n)


def test_single_draw_json_is_strict(tiny_model_dir, capsys):
    assert cli_main(["query", str(tiny_model_dir), "--target", "recovery", "--num-samples", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out
    d = json.loads(out)
    assert d["probabilities"]["0"]["se"] is None and "2 Monte Carlo draws" in d["se_note"]
    args = [
        "effect",
        str(tiny_model_dir),
        "--outcome",
        "recovery",
        "--treatment",
        "treatment",
        "--treated",
        "1",
        "--control",
        "0",
        "--num-samples",
        "1",
        "--json",
    ]
    assert cli_main(args) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["se"] is None and est["ci_low"] is None and est["se_note"]


def test_cli_polish(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"hf-causal {hf_causal.__version__}"
    with pytest.raises(SystemExit):
        cli_main(["effect", "--help"])
    out = capsys.readouterr().out
    for fragment in (
        "the outcome variable Y",
        "the treatment variable T",
        "ate: average effect",
        "the same seed with another batch size gives other draws",
    ):
        assert fragment in " ".join(out.split()), fragment


# --- data files -------------------------------------------------------------------------------------------
GRAPH = {
    "variables": {
        "x": {"type": "categorical", "values": [0, 1, 2]},
        "t": {"type": "categorical", "values": [0, 1]},
        "y": {"type": "categorical", "values": [0, 1]},
    },
    "edges": [["x", "t"], ["x", "y"], ["t", "y"]],
}


def _csv(tmp_path, gap_row=42, n=200):
    rows = pd.DataFrame(
        {"x": [i % 3 for i in range(n)], "t": [i % 2 for i in range(n)], "y": [(i // 2) % 2 for i in range(n)]}
    )
    rows["x"] = rows["x"].astype(object)
    rows.loc[gap_row, "x"] = None
    p = tmp_path / "rows.csv"
    rows.to_csv(p, index=False)
    return p, rows


def test_a_gap_in_an_integer_coded_column_is_reported_at_its_row(tmp_path):
    path, _ = _csv(tmp_path)
    assert path.read_text().splitlines()[43].startswith(",")  # the gap really is an empty cell (row 42, line 44)
    with pytest.raises(DataError, match=rf"{path}: row 42: variable 'x': missing value; declare `missing: as_value`"):
        train({"graph": GRAPH, "data": str(path), "num_train_epochs": 1, "output_dir": str(tmp_path / "m")})
    assert not (tmp_path / "m" / "causal_config.json").exists()
    g = json.loads(json.dumps(GRAPH))
    g["variables"]["x"]["missing"] = "as_value"
    out = train(
        {
            "graph": g,
            "data": str(path),
            "num_train_epochs": 1,
            "n_embd": 16,
            "output_dir": str(tmp_path / "m"),
            "logging_steps": 10**6,
        }
    )
    eng = CausalEngine.from_pretrained(out)
    att = eng.att("y", "t", 1, 0, data=str(path), num_samples=8)
    assert att.details["treated_rows"] == 100  # the treated rows are found although the column has a gap


def test_header_only_files(tmp_path, tiny_model_dir, capsys):
    p = tmp_path / "empty.csv"
    p.write_text("x,t,y\n")
    with pytest.raises(DataError, match=rf"{p} has no rows"):
        train({"graph": GRAPH, "data": str(p), "output_dir": str(tmp_path / "m")})
    q = tmp_path / "demo_empty.csv"
    q.write_text("age,severity,treatment,biomarker,recovery,readmitted\n")
    assert cli_main(["query", str(tiny_model_dir), *Q, "--data", str(q)]) == 2
    assert f"{q} has no rows" in capsys.readouterr().err
    z = tmp_path / "zero.csv"
    z.write_text("")
    with pytest.raises(DataError, match="is empty"):
        hf_causal.load_table(z)


def test_bad_context_rows_name_the_row(tiny_model_dir, tmp_path, demo_world_):
    rows = demo_world_.sample(20, seed=0)
    rows.loc[7, "age"] = "ancient"
    with pytest.raises(DataError, match=r"row 7: variable 'age': value 'ancient' is not one of"):
        CausalEngine.from_pretrained(tiny_model_dir).query("recovery", do={"treatment": 1}, data=rows)


# --- files on disk -------------------------------------------------------------------------------------------
def test_files_get_the_umask_permissions_and_stale_temporaries_go(tiny_model_dir, tmp_path):
    from hf_causal.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        out = tmp_path / "s.csv"
        dead = tmp_path / ".s.csv.999999999.abc.tmp"  # left by a killed writer (no such process)
        dead.write_text("partial")
        live = tmp_path / f".s.csv.{os.getpid()}.abc.tmp"  # a writer that still runs: never touched
        live.write_text("in progress")
        assert cli_main(["sample", str(tiny_model_dir), "-n", "3", "-o", str(out)]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        assert not dead.exists() and live.exists()
        m = tmp_path / "copy"
        CausalEngine.from_pretrained(tiny_model_dir).save_pretrained(m)
        assert stat.S_IMODE(m.stat().st_mode) == 0o755
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in m.iterdir())
        atomic_write_text(tmp_path / "x.txt", "x")
        assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_recipe_duplicate_keys(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text(yaml.safe_dump({"world": "demo"}) + "num_train_epochs: 1\nnum_train_epochs: 2\n")
    with pytest.raises(hf_causal.RecipeError, match="num_train_epochs' appears twice"):
        hf_causal.parse_recipe(r)
