"""The evaluation: what reads finished runs and puts numbers on them. The
classifier whose features the metrics use, the metrics, a run's evaluation
(python -m common.evaluation.evaluate), its samples exported
(python -m common.evaluation.sample) and runs compared
(python -m common.evaluation.compare). It opens runs through common.runs and
never trains one."""
