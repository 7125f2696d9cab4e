"""The reports' experiments, beyond training one model:

    python -m common.experiments seeds --model M [--seeds 1 2 3] TRAINING ARGUMENTS
    python -m common.experiments lr-sweep [--rates ...] [--seeds ...] [--model M] TRAINING ARGUMENTS
    python -m common.experiments translation RUN_DIR [RUN_DIR ...]
    python -m common.experiments labels RUN_DIR [RUN_DIR ...]

seeds: one configuration under several seeds, its spread (seeds.py);
lr-sweep: report 002's learning-rate sensitivity (lr_sweep.py);
translation: report 002's robustness to shifted digits (translation.py);
labels: report 003's label predictor (labels.py).
Each writes Markdown tables and figures under outputs/; seeds and lr-sweep
(and bench/parity.py, the tutorial's loop beside ours) run their runs one
after another, --workers N at once, or on a Ray cluster (--cluster
ADDRESS; sweep.py)."""

EXPERIMENTS = {"seeds": "common.experiments.seeds",
               "lr-sweep": "common.experiments.lr_sweep",
               "translation": "common.experiments.translation",
               "labels": "common.experiments.labels"}
