"""The VLM judge stage: a vision model picks the image of each pair that follows its anti-aesthetic prompt."""
