"""nerfstudio method specifications of hypnerf-ns (the `nerfstudio.method_configs` entry point).

`hyp-nerf`: the HyP-NeRF category prior, sized to train on a 2-core CPU (see README).
"""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.plugins.types import MethodSpecification

from hypnerf_ns.data.datamanager import CategoryDataManagerConfig, ObjectBatchPixelSamplerConfig
from hypnerf_ns.data.dataparser import CategoryDataParserConfig
from hypnerf_ns.method.model import HypNeRFModelConfig
from hypnerf_ns.method.optimizers import FusedAdamOptimizerConfig, SparseAdamOptimizerConfig
from hypnerf_ns.method.pipeline import HypNeRFPipelineConfig
from hypnerf_ns.method.trainer import HypNeRFTrainerConfig

MAX_STEPS = 30_000


def _optimizer(lr: float, lr_final: float, sparse: bool = False) -> dict:
    optimizer = SparseAdamOptimizerConfig(lr=lr, eps=1e-15) if sparse else FusedAdamOptimizerConfig(lr=lr, eps=1e-15)
    return {
        "optimizer": optimizer,
        "scheduler": ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=MAX_STEPS),
    }


hyp_nerf = MethodSpecification(
    config=HypNeRFTrainerConfig(
        method_name="hyp-nerf",
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_eval_all_images=5_000,
        steps_per_save=1_000,
        max_num_iterations=MAX_STEPS,
        mixed_precision=False,
        pipeline=HypNeRFPipelineConfig(
            datamanager=CategoryDataManagerConfig(
                dataparser=CategoryDataParserConfig(),
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
                eval_num_images_to_sample_from=64,  # not every val image at startup (thousands of objects)
                eval_num_times_to_repeat_images=100,
                pixel_sampler=ObjectBatchPixelSamplerConfig(objects_per_batch=8),
            ),
            model=HypNeRFModelConfig(eval_num_rays_per_chunk=8192),
        ),
        optimizers={
            "codebook": _optimizer(lr=5e-2, lr_final=5e-3, sparse=True),
            "hypernetwork": _optimizer(lr=3e-3, lr_final=3e-4),
        },
        viewer=ViewerConfig(num_rays_per_chunk=8192),
        vis="viewer",
    ),
    description="HyP-NeRF: a hypernetwork NeRF prior over a category of objects (hypnerf-ns)",
)
