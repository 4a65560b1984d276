"""The nerfstudio method: model (rendering, losses, metrics), viewer controls, pipeline,
optimisers, trainer. Imports the core (`hypnerf_ns.nerf`) and the data layer, nothing above."""
