"""Reference solutions: the same public API as ``exercises/``, implemented."""
