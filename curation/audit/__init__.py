"""`widespec audit`: reward models score both images of every pair under both prompts, and the figures of the
paper's reward-model table (accuracy, F1, AUROC at ranking the anti-aesthetic image first) come from our data."""
