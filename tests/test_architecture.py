"""The package's shape: imports point one way, modules stay small, ``import hf_causal`` stays light."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hf_causal

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hf_causal"
HEAVY = ("torch", "transformers", "datasets", "peft", "accelerate")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _import_time_edges() -> dict[str, set[str]]:
    """``{module: modules of hf_causal it imports when it is imported}``: top-level statements only
    (imports inside functions run later, and ``if TYPE_CHECKING:`` blocks never)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
                if isinstance(sub, ast.Import):
                    names = [a.name for a in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    if sub.level:
                        base = package.split(".")
                        base = base[: len(base) - (sub.level - 1)]
                        prefix = ".".join(base + ([sub.module] if sub.module else []))
                    else:
                        prefix = sub.module or ""
                    names = [prefix] + [f"{prefix}.{a.name}" for a in sub.names]
                else:
                    continue
                for n in names:
                    if n in modules and n != mod:
                        edges[mod].add(n)
    return edges


def test_no_import_cycle_inside_hf_causal():
    import networkx as nx

    g = nx.DiGraph([(a, b) for a, bs in _import_time_edges().items() for b in bs])
    # a package importing its own submodules is the usual layout, not a cycle between concepts
    g.remove_edges_from([(a, b) for a, b in g.edges if b.startswith(a + ".")])
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:3]}"
    # and the check itself sees imports: the engine facade imports the planner
    assert "hf_causal.inference.planner" in _import_time_edges()["hf_causal.inference.engine"]


def test_engine_and_training_share_masks_and_do_not_import_each_other():
    edges = _import_time_edges()
    assert "hf_causal.attention" in edges["hf_causal.training"]
    assert "hf_causal.attention" in edges["hf_causal.inference.cache"]
    assert not any(e.startswith("hf_causal.inference") for e in edges["hf_causal.training"])
    assert "hf_causal.training" not in edges["hf_causal.inference.engine"]


def test_no_module_over_500_lines_without_a_reason():
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        n = len(text.splitlines())
        doc = ast.get_docstring(ast.parse(text)) or ""
        assert n <= 520 or "lines" in doc, f"{path.relative_to(ROOT)} has {n} lines and no reason in its docstring"


def _fresh(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        cwd=ROOT,
    )


def test_import_is_light():
    out = _fresh(
        "import json, sys, hf_causal\n"
        "hf_causal.GraphError, hf_causal.QueryError, hf_causal.__version__\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_cli_help_imports_nothing_heavy():
    out = _fresh(
        "import json, sys\n"
        "from hf_causal.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert out.returncode == 0, out.stderr
    assert "usage: hf-causal" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_pipeline_task_is_registered_by_import_hf_causal(tiny_model_dir):
    out = _fresh(
        "import json, sys, hf_causal\n"
        "assert 'transformers' not in sys.modules\n"
        "from transformers import pipeline\n"
        f"pipe = pipeline('causal-inference', model={str(tiny_model_dir)!r})\n"
        "print(json.dumps(pipe({'target': 'recovery', 'do': {'treatment': 1}}, num_samples=50, seed=3)))"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ans = json.loads(out.stdout.strip().splitlines()[-1])
    ref = hf_causal.load(tiny_model_dir).query("recovery", do={"treatment": 1}, num_samples=50, seed=3)
    assert ans == ref.to_dict()


def test_public_api_resolves():
    for name in hf_causal.__all__:
        assert getattr(hf_causal, name) is not None, name
    with pytest.raises(AttributeError):
        hf_causal.not_a_name  # noqa: B018


def test_error_hierarchy():
    from hf_causal import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.HfCausalError), name
    from hf_causal.graph import GraphError

    assert GraphError is hf_causal.GraphError  # still importable where it was
    assert issubclass(hf_causal.CausalWarning, UserWarning)
    assert issubclass(hf_causal.UnsupportedQueryError, hf_causal.QueryError)


def test_readme_layout_lists_every_module():
    readme = (ROOT / "README.md").read_text()
    rows = [r for r in readme[readme.index("## Layout") :].splitlines() if r.startswith("| `")]
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "evaluate_metrics" in rel.parts:
            continue  # listed as the folder
        folder, name = str(rel.parent) + "/", rel.name
        ok = any(str(rel) in r or (f"`{folder}`" in r and (name == "__init__.py" or f"`{name}`" in r)) for r in rows)
        assert ok, f"README's layout table does not list {rel}"


def test_docstring_examples_run():
    import doctest
    import importlib

    failed = []
    for path in sorted(PKG.rglob("*.py")):
        mod = importlib.import_module(_module_name(path))
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
        if res.failed:
            failed.append(mod.__name__)
    assert not failed, f"docstring examples fail in {failed}"


def test_train_help_lists_every_recipe_key_with_its_help(capsys):
    from hf_causal.cli import main
    from hf_causal.recipes import recipe_keys

    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for key in ("graph", "world_options", "loss_variables", "attention", "lora_r", "learning_rate", "output_dir"):
        assert f"--{key}" in out, key
    assert "train only these variables' conditionals" in out  # the dataclass field's help text
    assert len(recipe_keys()) > 100  # every TrainingArguments field too


def test_bnlearn_is_a_registered_world():
    pytest.importorskip("pgmpy")
    from hf_causal.worlds import available_worlds, get_world

    assert {"demo", "maze", "chess", "papers", "bnlearn"} <= set(available_worlds())
    w = get_world("bnlearn", network="asia")
    assert w.name == "asia" and len(w.graph.order) == 8 and len(w.sample(5, seed=0)) == 5
