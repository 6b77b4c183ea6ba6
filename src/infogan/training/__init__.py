"""Training: `train()` (the whole operation, run.py), which config a run gets (resume.py), the loop,
the step and its CUDA graph, the train state, ranks, monitoring, the run directory, augmentation."""
