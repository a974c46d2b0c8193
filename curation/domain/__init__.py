"""The domain layer: subjects (pairs) and their fate, pure and torch-free; imports the kernel only."""
