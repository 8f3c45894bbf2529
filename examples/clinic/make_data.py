"""Write the example table, its DAG and the true effects (the clinic world, hf_causal.worlds.clinic).

python examples/clinic/make_data.py        # writes clinic.csv, dag.txt and truth.json beside this file
"""

import json
from pathlib import Path

from hf_causal.graph_formats import to_dagitty
from hf_causal.worlds.clinic import ClinicWorld

here = Path(__file__).resolve().parent
world = ClinicWorld()
world.sample(3000, seed=2026).round(2).to_csv(here / "clinic.csv", index=False)
(here / "dag.txt").write_text(to_dagitty(world.graph))
truth = {
    "ATE of statin on event": world.cate(),
    "CATE for smokers": world.cate({"smoker": 1}),
    "CATE for non-smokers": world.cate({"smoker": 0}),
}
(here / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
print(truth)
