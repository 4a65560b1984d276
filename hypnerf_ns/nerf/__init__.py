"""The NeRF core: codes -> hypernetwork -> NeRF parameters -> field -> samples. Pure torch
functions and small modules with tensor shapes in their docstrings; no nerfstudio lifecycle."""
