"""Evaluation: clustering and information bounds, disentanglement metrics under named protocols,
the sample-quality score, label-free selection, and the report (`evaluate_run()`, report.py)."""
