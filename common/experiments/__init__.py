"""The reports' experiments, beyond training one model:

    python -m common.experiments lr-sweep [--rates ...] [--model M] TRAINING ARGUMENTS
    python -m common.experiments translation RUN_DIR [RUN_DIR ...]
    python -m common.experiments labels RUN_DIR [RUN_DIR ...]

lr-sweep: report 002's learning-rate sensitivity (lr_sweep.py);
translation: report 002's robustness to shifted digits (translation.py);
labels: report 003's label predictor (labels.py).
Each writes a Markdown table, a CSV and a figure under outputs/."""

EXPERIMENTS = {"lr-sweep": "common.experiments.lr_sweep",
               "translation": "common.experiments.translation",
               "labels": "common.experiments.labels"}
