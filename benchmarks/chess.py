"""Chess endgames (issue #6): partial interventions on games played by a behaviour policy.

Trains the engine on observational games of ``hf_causal.worlds.chess.ChessWorld`` (split layout:
position, first_check, first_move, continuation, result, plies), then on held-out start positions:

* **partial, first move**: P(win | X, do(first move = m)) for candidate moves m, the rest of the game
  played by the model, vs the exact dynamic-programming answer (``ChessWorld.first_move_values``);
* **partial, two White plies**: do(first move = m1, White's second move = m2), Black and everything
  after sampled (m2 chosen legal after every Black reply, so the exact answer needs no conditioning);
* **forced line**: three White moves forced (plies 0, 2, 4), again legal in every branch;
* **ranking**: Spearman correlation, per position, of the engine's and the exact P(win) over the
  candidate first moves;
* **population**: P(win | do(first_check=True)) over the position distribution vs the exact value and
  the confounded observational P(win | first move is a check).

The naive baseline for a (position, move) query is the observational win rate of the rows that played
that first move (any position of that material; the material's mean when none): what the data say
about a move without adjusting for the positions it was played in.

    python -m benchmarks.chess --recipe recipes/chess/gpt2-chess-small.yaml
    python -m benchmarks.chess --smoke
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from ._common import (
    add_card_arguments,
    card_from_earlier_run,
    markdown_table,
    publish_card,
    recipe_setup,
    train_or_load,
    write_json,
)
from .baselines import chess_check_win_rate

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "chess" / "gpt2-chess-small.yaml"


def _line(world, pos, rng, n_white: int):
    """``{0: m1, 2: m2, ...}``: the policy's likeliest first move, then White moves legal after every
    Black reply (drawn at random among those), so the exact answer needs no legality conditioning."""
    from hf_causal.worlds.chess import IllegalMoveError, legal_moves, push

    probs = world.move_probabilities(pos)
    forced = {0: max(probs, key=probs.get)}
    frontier = [push(pos, forced[0])]
    for k in range(1, n_white):
        nxt = []
        for p in frontier:
            if p.material != pos.material:
                continue
            for b in legal_moves(p):
                q = push(p, b)
                if q.material == pos.material and legal_moves(q):
                    nxt.append(q)
        if not nxt:
            return None
        common = set(legal_moves(nxt[0]))
        for q in nxt[1:]:
            common &= set(legal_moves(q))
        if not common:
            return None
        forced[2 * k] = sorted(common)[int(rng.integers(len(common)))]
        frontier = [push(q, forced[2 * k]) for q in nxt]
        try:
            world.outcome_distribution(pos, forced=forced)
        except IllegalMoveError:
            return None
    return forced


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(RECIPE), help="training recipe")
    ap.add_argument("--rows", type=int, default=None, help="observational games (default: the recipe's)")
    ap.add_argument("--epochs", type=float, default=None, help="default: the recipe's")
    ap.add_argument("--positions", type=int, default=40, help="held-out start positions")
    ap.add_argument(
        "--moves", type=int, default=8, help="candidate first moves per position (top of the policy + random)"
    )
    ap.add_argument("--draws", type=int, default=64, help="engine draws per query")
    ap.add_argument("--move-format", choices=["uci", "piece"], default=None, help="default: the recipe's")
    ap.add_argument("--model", default=None, help="use this trained engine folder instead of training")
    ap.add_argument("--out", default="results/chess")
    ap.add_argument("--smoke", action="store_true")
    add_card_arguments(ap, "model_cards/chess-gpt2-small")
    args = ap.parse_args(argv)
    if args.card_only:
        return card_from_earlier_run(ap, args, "chess.json", write_card)
    if args.smoke:
        args.rows, args.epochs, args.positions, args.moves, args.draws = 300, 1, 2, 3, 4
    warnings.filterwarnings("ignore")
    import numpy as np
    from scipy.stats import spearmanr

    from hf_causal import CausalEngine
    from hf_causal.worlds.chess import Position, plot_position, tables

    out = Path(args.out)
    recipe, overrides, world, cfg = recipe_setup(
        args.recipe,
        out,
        rows=args.rows,
        epochs=args.epochs,
        smoke=args.smoke,
        world_options={"move_format": args.move_format} if args.move_format else None,
    )
    rows = world.sample(cfg["world_rows"], seed=cfg.get("world_seed", 0))
    mdir, t_train = train_or_load(recipe, overrides, args.model)
    eng = CausalEngine.from_pretrained(mdir)
    n_params = sum(p.numel() for p in eng.model.parameters())

    win = rows["result"] == "win"
    by_move = rows.assign(win=win).groupby(["material", "first_move"])["win"].mean()
    by_mat = rows.assign(win=win).groupby("material")["win"].mean()

    def naive(pos, move):
        key = (pos.material, world.engine_query(pos, move)["do"]["first_move"])  # in the world's move format
        return float(by_move.loc[key]) if key in by_move.index else float(by_mat.loc[pos.material])

    # held-out start positions: not a start of any training row
    seen = {(m, tuple(p)) for m, p in zip(rows["material"], rows["position"])}
    rng = np.random.default_rng(2024)
    test = []
    while len(test) < args.positions:
        mat = world.materials[int(rng.integers(len(world.materials)))]
        pool = np.flatnonzero(tables(mat).start)
        pos = Position.from_index(mat, int(pool[rng.integers(pool.size)]))
        if (mat, tuple(pos.tokens())) not in seen:
            test.append(pos)

    def p_win(q, seed):
        return eng.query("result", do=q["do"], given=q["given"], num_samples=args.draws, seed=seed).probs["win"]

    errs = {k: {"engine": [], "naive": []} for k in ("first move", "two White plies", "forced line (3 White moves)")}
    rhos, rhos_naive, example = [], [], None
    t0 = time.time()
    for i, pos in enumerate(test):
        exact = world.first_move_values(pos)
        probs = world.move_probabilities(pos)
        top = sorted(probs, key=lambda m: -probs[m])[: max(1, args.moves // 2)]
        rest = [m for m in exact if m not in top]
        extra = list(rng.choice(rest, size=min(len(rest), args.moves - len(top)), replace=False)) if rest else []
        cands = top + [str(m) for m in extra]
        est = {m: p_win(world.engine_query(pos, m), seed=i) for m in cands}
        for m in cands:
            errs["first move"]["engine"].append(abs(est[m] - exact[m]))
            errs["first move"]["naive"].append(abs(naive(pos, m) - exact[m]))
        if len(cands) >= 3:
            truth = [exact[m] for m in cands]
            rhos.append(spearmanr([est[m] for m in cands], truth).statistic)
            rhos_naive.append(spearmanr([naive(pos, m) for m in cands], truth).statistic)
        for kind, k in (("two White plies", 2), ("forced line (3 White moves)", 3)):
            line = _line(world, pos, rng, k)
            if line is None:
                continue
            truth = world.outcome_distribution(pos, forced=line).p_win
            errs[kind]["engine"].append(abs(p_win(world.engine_query(pos, forced=line), seed=i) - truth))
            errs[kind]["naive"].append(abs(naive(pos, line[0]) - truth))
        if example is None and len(cands) >= 3:
            example = (pos, {m: (est[m], exact[m]) for m in cands[:6]})
    t_queries = time.time() - t0

    # population: do(first_check=True) vs the observational P(win | check)
    pop_rows = world.sample(max(200, args.positions * 10), seed=777)[["material", "position"]]
    pop_engine = eng.query("result", do={"first_check": True}, data=pop_rows, seed=0).probs["win"]
    pop_exact = world.population_check_effect(True)
    obs_exact, _ = world.observational_check()
    obs_data, obs_se = chess_check_win_rate(rows)

    table = markdown_table(
        ["query", "n", "engine MAE", "naive MAE", "engine/naive"],
        [
            [
                k,
                len(v["engine"]),
                float(np.mean(v["engine"])),
                float(np.mean(v["naive"])),
                float(np.mean(v["engine"]) / max(np.mean(v["naive"]), 1e-12)),
            ]
            for k, v in errs.items()
            if v["engine"]
        ],
    )
    rank = markdown_table(
        ["ranking of first moves", "positions", "mean Spearman engine", "mean Spearman naive"],
        [["P(win | do(first move))", len(rhos), float(np.nanmean(rhos)), float(np.nanmean(rhos_naive))]],
    )
    pop_table = markdown_table(
        ["population", "exact", "engine", "naive P(win | check), data", "naive, exact"],
        [["P(win | do(first move is a check))", pop_exact, pop_engine, f"{obs_data:.4f} ± {obs_se:.4f}", obs_exact]],
    )
    print(
        f"\nChess ({', '.join(world.materials)}, max {world.max_plies} plies): {len(rows)} games; engine "
        f"{n_params:,} parameters, trained in {t_train:.0f} s; {len(test)} held-out positions, "
        f"{args.draws} draws per query ({t_queries:.0f} s of queries)\n\n{table}\n\n{rank}\n\n{pop_table}"
    )
    result = {
        "config": vars(args),
        "games": len(rows),
        "world": {"materials": list(world.materials), "max_plies": world.max_plies, "move_format": world.move_format},
        "engine_parameters": n_params,
        "train_seconds": t_train,
        "query_seconds": t_queries,
        "mae": {k: {m: float(np.mean(x)) for m, x in v.items()} for k, v in errs.items() if v["engine"]},
        "n": {k: len(v["engine"]) for k, v in errs.items()},
        "spearman": {"engine": float(np.nanmean(rhos)), "naive": float(np.nanmean(rhos_naive)), "positions": len(rhos)},
        "population": {
            "exact": pop_exact,
            "engine": pop_engine,
            "observational_exact": obs_exact,
            "observational_data": obs_data,
            "observational_se": obs_se,
        },
    }
    write_json(result, out / "chess.json")
    if example is not None:
        pos, mp = example
        fig = plot_position(pos, mp, title="P(win | do(first move)): engine / exact")
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / "chess_example.png", dpi=110)
    if args.card:
        write_card(result, out, Path(args.card))
    return result


USAGE = """from hf_causal import CausalEngine
from hf_causal.worlds.chess import ChessWorld

engine = CausalEngine.from_pretrained("{model}")              # or hf_causal.load("<repo id>")
world = ChessWorld(materials=("KQK", "KRK"), max_plies=30, move_format="{fmt}")
q = world.engine_query("K:e3 R:d1 k:e5", forced={{0: "d1d7"}})   # play Rd7, then as usual
p = engine.query("result", do=q["do"], given=q["given"], num_samples=256).probs["win"]
print(p, "exact:", world.first_move_values("K:e3 R:d1 k:e5")["d1d7"])"""


def write_card(result: dict, out: Path, card_dir: Path) -> Path:
    """The model card of the benchmark's engine, with its measured errors, into ``card_dir`` (atomic)."""
    evaluation = [
        {
            "query": f"mean abs. error of P(win | position, do({kind})), {result['n'][kind]} held-out queries",
            "exact": "0",
            "engine": f"{v['engine']:.4f}",
            "naive": f"{v['naive']:.4f}",
        }
        for kind, v in result["mae"].items()
    ]
    sp, pop = result["spearman"], result["population"]
    evaluation += [
        {
            "query": f"Spearman of first-move rankings ({sp['positions']} positions)",
            "exact": "1",
            "engine": f"{sp['engine']:.3f}",
            "naive": f"{sp['naive']:.3f}",
        },
        {
            "query": "P(win | do(first move is a check)), over positions",
            "exact": f"{pop['exact']:.4f}",
            "engine": f"{pop['engine']:.4f}",
            "naive": f"{pop['observational_exact']:.4f} (P(win | check))",
        },
    ]
    w = result["world"]
    extra = (
        "Exact values come from `ChessWorld` (retrograde distance-to-mate tables and dynamic programming over "
        "(position, ply) for the behaviour policy with the forced moves). The naive baseline is the observational "
        "win rate of the first move across positions.\n\n![A held-out position: candidate first moves, engine / exact "
        "P(win)](chess_example.png)"
    )
    mdir = out / "model"
    return publish_card(
        mdir,
        card_dir,
        [out / "chess_example.png"],
        repo_id="hf-causal/chess-gpt2-small",
        evaluation=evaluation,
        data_description=f"{result['games']} games simulated by hf_causal.worlds.chess.ChessWorld "
        f"({', '.join(w['materials'])}, at most {w['max_plies']} plies, move format {w['move_format']}); "
        f"held-out start positions for the evaluation; {result['engine_parameters']:,} parameters, "
        f"{result['train_seconds']:.0f} s of training on 2 CPU cores",
        usage=USAGE.format(model=mdir, fmt=w["move_format"]),
        extra=extra,
    )


if __name__ == "__main__":
    main()
