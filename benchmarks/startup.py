"""Time to start: ``hf-causal --help`` and ``import hf_causal`` in fresh processes (median of repeats).

    python -m benchmarks.startup              # 7 repeats after a warm-up
    python -m benchmarks.startup --smoke

Writes ``<out>/startup.json``. The goal (issue #13) is ``hf-causal --help`` under 1.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from ._common import markdown_table, median_seconds, write_json

COMMANDS = {
    "python -c 'import hf_causal'": [sys.executable, "-c", "import hf_causal"],
    "hf-causal --help": [sys.executable, "-m", "hf_causal.cli", "--help"],
    "python -c 'import hf_causal, torch'": [sys.executable, "-c", "import hf_causal, torch"],
    "python -c 'import hf_causal; hf_causal.CausalEngine'": [
        sys.executable,
        "-c",
        "import hf_causal; hf_causal.CausalEngine",
    ],
}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default="results/startup")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.repeats = 1
    exe = shutil.which("hf-causal")
    if exe:
        COMMANDS["hf-causal --help"] = [exe, "--help"]
    rows, result = [], {}
    for label, cmd in COMMANDS.items():
        secs, _ = median_seconds(lambda cmd=cmd: subprocess.run(cmd, check=True, capture_output=True), args.repeats)
        result[label] = secs
        rows.append([label, f"{secs:.3f}"])
    print(markdown_table(["command (fresh process)", f"median s of {args.repeats}"], rows))
    write_json({"repeats": args.repeats, "seconds": result}, Path(args.out) / "startup.json")
    return result


if __name__ == "__main__":
    main()
