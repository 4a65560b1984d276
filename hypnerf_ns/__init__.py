"""hypnerf-ns: HyP-NeRF category priors as a nerfstudio method."""

__version__ = "0.1.0"
