"""README examples run as written (paths redirected to test folders); the CLI teaches."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hf_causal.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run(
    demo_model_dir, maze_model_dir, chess_model_dir, papers_model_dir, tmp_path, monkeypatch, capsys
):
    from conftest import CHESS_OPTIONS, MAZE_OPTIONS, PAPERS_OPTIONS

    monkeypatch.chdir(ROOT)
    for block in _blocks("python"):
        code = block.replace('"outputs/demo"', repr(str(demo_model_dir)))
        code = code.replace('"outputs/maze-small"', repr(str(maze_model_dir)))  # the tests' small maze engine
        code = code.replace(
            'MazeWorld(sizes=(5, 6), max_length=32, layout="trajectory")', f"MazeWorld(**{MAZE_OPTIONS!r})"
        )
        code = code.replace('"outputs/chess-small"', repr(str(chess_model_dir)))  # the tests' small chess engine
        code = code.replace(
            'ChessWorld(materials=("KQK", "KRK"), max_plies=30, move_format="piece")',
            f"ChessWorld(**{CHESS_OPTIONS!r})",
        )
        code = code.replace('"outputs/papers-minilm"', repr(str(papers_model_dir)))  # the tests' small text engine
        code = code.replace('PaperWorld(setting="interaction")', f"PaperWorld(**{PAPERS_OPTIONS!r})")
        code = code.replace('"outputs/quick"', repr(str(tmp_path / "quick")))
        code = code.replace('"outputs/clinic"', repr(str(tmp_path / "clinic")))
        code = code.replace(
            '"num_train_epochs": 12, "per_device_train_batch_size": 64',
            '"num_train_epochs": 2, "per_device_train_batch_size": 64',
        )
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "recovery" in out  # the DataFrame head was printed
    assert "CATE for smokers" in out and "(truth -0.180)" in out  # "Your own data": the answer beside the truth
    assert "P(reached | do(detour), maze):" in out and "E[reached | do(R, R)]:" in out
    assert "P(win | do(Rd7, ..., Kd3), position):" in out
    assert "P(state-of-the-art title | do(abstract)):" in out


def test_readme_cli_examples_run(demo_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    lines = [
        ln
        for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
        for ln in b.splitlines()
        if ln.startswith("hf-causal ")
    ]
    assert {ln.split()[1] for ln in lines} == {"train", "query", "effect", "sample"}
    for ln in lines:
        ln = ln.replace("outputs/demo", str(demo_model_dir)).replace("outputs/quick", str(tmp_path / "quick"))
        ln = ln.replace("outputs/treated.csv", str(tmp_path / "treated.csv"))
        assert cli_main(shlex.split(ln)[1:]) == 0, ln
    df = pd.read_csv(tmp_path / "treated.csv")
    assert len(df) == 500 and (df["treatment"] == 1).all()
    assert "P(recovery | do(treatment=1))" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    cmd = [ln for ln in ci if ln.startswith("python3 -m venv")]
    assert cmd and cmd[0] in README


def test_entry_point_is_installed():
    exe = Path(sys.executable).parent / "hf-causal"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hf_causal.cli"]
    r = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage: hf-causal" in r.stdout and "demo" in r.stdout


@pytest.mark.parametrize("sub", ["train", "query", "effect", "sample", "demo"])
def test_help_teaches(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([sub, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: hf-causal {sub}" in out and "example" in out


def test_cli_errors_are_clear(tiny_model_dir, capsys):
    assert cli_main(["query", str(tiny_model_dir), "--target", "recovery", "--do", "treatment=5"]) == 2
    assert "variable 'treatment': value '5' is not one of [0, 1]" in capsys.readouterr().err
    assert (
        cli_main(
            ["query", str(tiny_model_dir), "--target", "recovery", "--do", "treatment=1", "--given", "treatment=0"]
        )
        == 2
    )
    assert "both intervened on and conditioned on" in capsys.readouterr().err
    assert cli_main(["query", "/nonexistent/model", "--target", "recovery"]) == 2
    assert "no such folder: /nonexistent/model" in capsys.readouterr().err  # not a Hub lookup
    assert cli_main(["query", str(tiny_model_dir.parent), "--target", "recovery"]) == 2
    assert "not an hf_causal model folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["query", str(tiny_model_dir), "--target", "recovery", "--do", "treatment"])


def test_effect_att_from_data_file(tiny_model_dir, tmp_path, capsys, demo_world_):
    rows = tmp_path / "rows.parquet"
    demo_world_.sample(300, seed=0).to_parquet(rows)
    assert (
        cli_main(
            [
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
                "--estimand",
                "att",
                "--data",
                str(rows),
                "--json",
                "--plot",
                str(tmp_path / "att.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '"confounder_source": "data"' in out and (tmp_path / "att.png").stat().st_size > 1000
