"""Versioned Hugging Face datasets: export folder, dataset card, versions and diff, publish."""
