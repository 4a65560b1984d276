"""hypnerf-ns: HyP-NeRF category priors as a nerfstudio method."""

from importlib.metadata import version

__version__ = version("hypnerf-ns")  # pyproject.toml's, the one place it is written
