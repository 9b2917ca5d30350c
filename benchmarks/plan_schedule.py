"""A plan's total work, critical path and schedule on N workers: measured, or on paper.

    python benchmarks/plan_schedule.py runs/emergent-misalignment      # a finished run
    python benchmarks/plan_schedule.py --paper                          # 5 x 6 x 5 on 8 GPUs

For a finished run directory, the plan is rebuilt from its ``spec.json`` and each step's
cost is the seconds its ``step.json`` recorded (the organism, built once into the global
cache, costs 0 here). ``--paper`` builds the plan of an emergent-misalignment study of
5 base models x 6 datasets x 5 fine-tune seeds with the step costs assumed below, and
schedules it on 8 GPUs. Prints the total work (time on one worker), the critical path
(time on unlimited workers), their ratio (the most any number of workers can speed it up)
and :func:`~darkmirror.runner.schedule.list_schedule` makespans for 1-16 workers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from darkmirror.experiments import EXPERIMENTS
from darkmirror.runner import Plan, Resources
from darkmirror.runner.schedule import critical_path, list_schedule

# The on-paper study: Qwen2.5 bases, LoRA fine-tunes on ~6,000 chats (~1.8M tokens, one
# epoch) and vLLM evaluation of 24 questions x 100 samples (~0.7M generated tokens) on
# one 80-141 GB GPU each. Minutes per step, assumed from public LoRA and vLLM throughput
# figures for H100-class GPUs, not measured here.
PAPER_MINUTES = {
    # base: (fine-tune, evaluation)
    "qwen2.5-0.5b": (1.0, 1.0),
    "qwen2.5-1.5b": (2.0, 1.5),
    "qwen2.5-7b": (6.0, 2.5),
    "qwen2.5-14b": (12.0, 4.0),
    "qwen2.5-32b": (27.0, 7.0),
}
PAPER_DATASETS = [
    "insecure",
    "secure",
    "edu_insecure",
    "evil_numbers",
    "bad_medical",
    "risky_financial",
]
PAPER_SEEDS = 5
JUDGE_MINUTES = 0.6  # 4,800 judge calls at ~146/s with 8 in flight; no GPU


def _measured(run: Path) -> tuple[list, dict[str, float]]:
    spec_data = json.loads((run / "spec.json").read_text())
    experiment = EXPERIMENTS[spec_data["experiment"]]
    plan = experiment.plan(experiment.spec.model_validate(spec_data))
    steps = plan.planned()
    cost = {}
    for p in steps:
        record = run / "steps" / p.key / "step.json"
        cost[p.key] = json.loads(record.read_text())["seconds"] if record.is_file() else 0.0
    return steps, cost


def _paper() -> tuple[list, dict[str, float]]:
    plan, cost = Plan(), {}
    gpu = Resources(gpus=1.0)

    def add(name: str, minutes: float, deps: tuple[str, ...] = ()) -> str:
        plan.add(name, {}, lambda ctx: None, deps=deps, resources=gpu)
        cost[plan.key(name)] = 60.0 * minutes
        return name

    for base, (train, evaluate) in PAPER_MINUTES.items():
        judged = add(f"judge-{base}", JUDGE_MINUTES, (add(f"evaluate-{base}", evaluate),))
        for ds in PAPER_DATASETS:
            data = add(f"dataset-{base}-{ds}", 0.1)
            for seed in range(PAPER_SEEDS):
                ft = add(f"finetune-{base}-{ds}-s{seed}", train, (data,))
                ev = add(f"evaluate-{base}-{ds}-s{seed}", evaluate, (ft,))
                add(f"judge-{base}-{ds}-s{seed}", JUDGE_MINUTES, (ev, judged))
    return plan.planned(), cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, help="a finished run directory")
    parser.add_argument("--paper", action="store_true", help="the 5 x 6 x 5 study on paper")
    args = parser.parse_args()
    steps, cost = _paper() if args.paper else _measured(args.run)
    total = sum(cost.values())
    length, chain = critical_path(steps, cost)
    unit, scale = ("min", 60.0) if args.paper else ("s", 1.0)
    print(f"steps {len(steps)}; total work {total / scale:.1f} {unit}; "
          f"critical path {length / scale:.1f} {unit} ({len(chain)} steps); "
          f"most speed-up {total / length if length else float('nan'):.1f}x")  # fmt: skip
    for workers in (1, 2, 4, 8, 16):
        s = list_schedule(steps, cost, workers)
        print(f"  {workers:>2} workers: {s.makespan / scale:8.1f} {unit}, busy {s.busy:.0%}")


if __name__ == "__main__":
    main()
