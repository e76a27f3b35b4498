"""Your code. Each ``exNN_*.py`` module is one notebook's exercise: fill in the stubs."""
