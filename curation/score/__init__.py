"""CLIP fidelity scoring, accept / reject / review decisions and threshold calibration."""
