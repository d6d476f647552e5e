"""Applications of the GRU, each a config dataclass, a ``run`` and a Python API."""
