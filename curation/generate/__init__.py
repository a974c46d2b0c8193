"""Paired reference images: presets, seeds, model loading, batch rendering and the generate stage."""
