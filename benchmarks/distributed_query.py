"""Monte Carlo queries split across processes: same answer, measured wall time.

    python -m benchmarks.distributed_query --model outputs/demo                         # 1 process
    accelerate launch --config_file recipes/accelerate_configs/cpu2.yaml \\
        -m benchmarks.distributed_query --model outputs/demo                            # 2 processes

Rank 0 writes ``<out>/distributed_query_<world>.json`` (probabilities, seconds, world size).
Under a launcher the engine splits batches across processes (batch b seeded by (seed, b)), so
the probabilities are identical to the single-process run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--num-samples", type=int, default=32768)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--no-share", action="store_true", help="disable prefix sharing (more compute per draw)")
    ap.add_argument("--out", default="results/distributed_query")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())  # torch.distributed under a launcher (gloo on CPU)
    from hf_causal import CausalEngine

    eng = CausalEngine.from_pretrained(args.model, batch_size=args.batch_size, share_prefixes=not args.no_share)
    target, do = "recovery", {"treatment": 1}
    eng.query(target, do=do, num_samples=args.batch_size, seed=1)  # warm-up
    state.wait_for_everyone()
    t0 = time.time()
    d = eng.query(target, do=do, num_samples=args.num_samples, seed=0)
    state.wait_for_everyone()
    secs = time.time() - t0
    report = {
        "world_size": state.num_processes,
        "seconds": secs,
        "num_samples": args.num_samples,
        "share_prefixes": not args.no_share,
        "result": d.to_dict(),
    }
    if state.is_main_process:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"distributed_query_{state.num_processes}.json").write_text(json.dumps(report, indent=2))
        print(f"world {state.num_processes}: {secs:.2f} s for {args.num_samples} draws; p = {d.probs}")
    state.wait_for_everyone()
    if dist.is_initialized():
        dist.destroy_process_group()
    return report


if __name__ == "__main__":
    main()
