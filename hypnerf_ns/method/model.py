"""HypNeRFModel: the category prior as a nerfstudio Model.

Lifecycle as in nerfstudio's nerfacto: `populate_modules` builds the codebook, hypernetwork,
field and occupancy grids; `get_outputs` renders a ray bundle whose rays carry their object
(`ray_bundle.metadata["object_index"]`) with `nerf.rendering.render_rays`; `get_loss_dict` is RGB
MSE (on a random background, so transparency is learnt) + KL of the codes;
`get_image_metrics_and_images` is PSNR/SSIM on white. Rays without an object (the viewer,
nerfstudio's export and render tools) show the object chosen in the viewer's controls, or a blend
of two objects' codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.renderers import RGBRenderer
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from hypnerf_ns.errors import DivergedError, HypnerfError
from hypnerf_ns.method.viewer import ObjectControls
from hypnerf_ns.nerf.encoding import HashGridSpec
from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hypernetwork import Codebook, HyperNetwork, NeRFParams
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, load_codes
from hypnerf_ns.nerf.rendering import blend_random_background, density_at, occupancy_grids, render_rays
from hypnerf_ns.nerf.sampling import OccupancyGrids, density_threshold


@dataclass
class HypNeRFModelConfig(ModelConfig):
    """HyP-NeRF prior; defaults sized for a 2-core CPU (docs/training.md, "Default configuration")."""

    _target: type = field(default_factory=lambda: HypNeRFModel)
    enable_collider: bool = False
    """Rays are clipped to the object box by the model itself."""
    collider_params: dict[str, float] | None = None
    shape_code_dim: int = 32
    """Size of each object's shape code (drives hash tables and density MLP)."""
    color_code_dim: int = 32
    """Size of each object's colour code (drives the colour MLP)."""
    hyper_hidden_dim: int = 128
    """Width of the hypernetwork trunks."""
    hyper_layers: int = 2
    """Hidden layers of each hypernetwork trunk."""
    grid: HashGridSpec = field(default_factory=HashGridSpec)
    """Hash grid generated for each object."""
    mlp_hidden_dim: int = 32
    """Width of the generated density and colour MLPs."""
    geo_feat_dim: int = 15
    """Geometry features from the density MLP to the colour MLP."""
    sh_levels: int = 3
    """Spherical-harmonics levels of the view direction."""
    kl_weight: float = 1e-4
    """Weight of the KL divergence of the codes to N(0, I)."""
    render_step_size: float = 1.0 / 128
    """Distance between samples along a ray, in scene units (the object box is 1 wide)."""
    occupancy_resolution: int = 32
    """Cells per axis of the occupancy grids: each training object's, and those built for every render
    outside training (viewer, ns-render, ns-export and the tools), so an object renders the same
    whoever asks."""
    occupancy_warmup_steps: int = 128
    """Steps before the occupancy grids are first used (space is sampled densely before)."""
    occupancy_update_every: int = 16
    """Refresh the occupancy grids of `occupancy_objects_per_update` objects every this many steps."""
    occupancy_objects_per_update: int = 8
    """Objects whose grids are refreshed per update (round robin over the category)."""
    occupancy_alpha_threshold: float = 0.01
    """A cell is occupied if one step through it would be at least this opaque."""
    eval_background_color: Literal["white", "black"] = "white"
    """Background of rendered images (training uses random backgrounds)."""
    predict_normals: bool = True
    """Output rendered normals (density gradient) outside training; needed by ns-export poisson."""
    active_object: str | None = None
    """Object (id) shown for rays that carry none (viewer, ns-render, ns-export); default the first."""
    active_latent: Path | None = None
    """Latent file (`hypnerf-ns invert`) shown instead of a training object; set by `hypnerf-ns select`."""
    active_nerf: Path | None = None
    """Finetuned NeRF file (`hypnerf-ns finetune`) shown instead; set by `hypnerf-ns select`."""
    text_mapping: Path | None = None
    """Text-to-codes file for the viewer's text box; `hypnerf-ns text` trains <run>/text.pt and sets this."""
    show_active_only: bool = False
    """Outside training, every ray shows the active object, even rays from other objects' cameras
    (ns-export draws rays from every training camera); set by `hypnerf-ns select`."""


GENERATED_KEPT = 8
"""NeRFs `HypNeRFModel.generated` keeps at a time: a handful of shown things, not a growing store."""


class HypNeRFModel(Model):
    """Hypernetwork NeRF prior over a category of objects."""

    config: HypNeRFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        metadata = self.kwargs.get("metadata") or {}
        self.object_ids: list[str] = list(metadata.get("object_ids", []))
        self.object_names: list[str] = list(metadata.get("object_names", self.object_ids))
        if not self.object_ids:
            raise ValueError("HypNeRFModel needs metadata['object_ids'] from the category dataparser")
        cfg = self.config
        aabb = self.scene_box.aabb.float()
        self.field = HyperField(cfg.grid, aabb, cfg.mlp_hidden_dim, cfg.geo_feat_dim, cfg.sh_levels)
        self.codebook = Codebook(len(self.object_ids), cfg.shape_code_dim, cfg.color_code_dim)
        self.hypernetwork = HyperNetwork(
            cfg.shape_code_dim,
            cfg.color_code_dim,
            cfg.hyper_hidden_dim,
            cfg.hyper_layers,
            self.field.table_shape,
            self.field.density_shapes(),
            self.field.color_shapes(),
            self.field.init_mlp_params(torch.Generator().manual_seed(0)),
        )
        threshold = density_threshold(cfg.occupancy_alpha_threshold, cfg.render_step_size)
        self.occupancy = OccupancyGrids(len(self.object_ids), cfg.occupancy_resolution, aabb, threshold)
        # Not used to render: nerfstudio's ns-export and evaluation blend backgrounds with it.
        self.renderer_rgb = RGBRenderer(background_color="random")
        self.controls = ObjectControls(
            self.codebook, self.hypernetwork, self.object_ids, cfg.active_object, cfg.text_mapping
        )
        self._generated: dict[Any, tuple[NeRFParams, Tensor]] = {}  # what -> (params, occupancy), see `generated`

    # ---- objects and codes ---------------------------------------------------------------
    def object_index(self, object_id: str) -> int:
        """Index of a training object by id (or name)."""
        for names in (self.object_ids, self.object_names):
            if object_id in names:
                return names.index(object_id)
        shown = ", ".join(self.object_ids[:10]) + (
            f", ... ({len(self.object_ids)} in all)" if len(self.object_ids) > 10 else ""
        )
        raise KeyError(f"unknown object {object_id!r}; known: {shown}")

    def get_extra_state(self) -> dict[str, Any]:
        """Object ids and names travel with the checkpoint."""
        return {"object_ids": self.object_ids, "object_names": self.object_names}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if list(state["object_ids"]) != self.object_ids:
            raise HypnerfError(
                f"the checkpoint's {len(state['object_ids'])} objects differ from the {len(self.object_ids)} objects "
                "of --data: load it with the category it was trained on"
            )
        self.object_names = list(state["object_names"])

    def generated(self, what: Any, make_params: Callable[[], NeRFParams]) -> tuple[NeRFParams, Tensor]:
        """NeRF parameters [B, ...] and occupancy grids [B, G, G, G] (`occupancy_grids` at
        `occupancy_resolution`) of what `make_params` generates, kept under the key `what` until a
        training step changes the prior. Everything this model renders through nerfstudio outside
        training (viewer, evaluation images, ns-render, ns-export) goes through here."""
        if what not in self._generated:
            if len(self._generated) >= GENERATED_KEPT:
                self._generated.clear()
            with torch.no_grad():
                params = make_params()
                occupied = occupancy_grids(
                    self.field, params, self.config.occupancy_resolution, self.occupancy.density_threshold
                )
                self._generated[what] = (params, occupied)
        return self._generated[what]

    def _displayed(self) -> tuple[NeRFParams, Tensor]:
        """NeRF parameters [1, ...] and occupancy grid [1, G, G, G] of what rays without an object show:
        the selected latent or finetuned NeRF file if any, else what the viewer's controls show."""
        nerf_file, latent_file = self.config.active_nerf, self.config.active_latent
        if nerf_file is not None:
            return self.generated(("nerf", nerf_file), lambda: FinetunedNeRF.load(nerf_file, self.hypernetwork).params)
        if latent_file is not None:
            return self.generated(
                ("latent", latent_file),
                lambda: self.hypernetwork(load_codes(latent_file, self.hypernetwork)),
            )
        return self.generated(self.controls.shown(), lambda: self.hypernetwork(self.controls.codes()))

    # ---- rendering ---------------------------------------------------------------------------
    # nerfstudio's Model declares get_outputs(RayBundle | Cameras) -> Dict[str, Tensor | List]: this model
    # renders ray bundles only (as nerfacto does) and all its outputs are tensors.
    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor]:  # type: ignore[override]
        metadata = ray_bundle.metadata or {}
        if "object_index" in metadata and (self.training or not self.config.show_active_only):
            ray_objects = metadata["object_index"].reshape(-1).long()
            objects, slot = torch.unique(ray_objects, return_inverse=True)
            if self.training:
                params = self.hypernetwork(self.codebook(objects, sample=True))
                occupied = self.occupancy.occupied()[objects]
            else:  # evaluation shows a training object exactly as the viewer does
                params, occupied = self.generated(
                    ("objects", tuple(objects.tolist())),
                    lambda: self.hypernetwork(self.codebook(objects, sample=False)),
                )
        else:
            params, occupied = self._displayed()
            slot = torch.zeros(len(ray_bundle), dtype=torch.long, device=self.device)
        outputs = render_rays(
            self.field,
            params,
            ray_bundle.origins.reshape(-1, 3),
            ray_bundle.directions.reshape(-1, 3),
            slot,
            occupied,
            step_size=self.config.render_step_size,
            background="random" if self.training else self.config.eval_background_color,
            jitter=self.training,
            normals=self.config.predict_normals and not self.training,
        )
        if self.training:
            outputs["object_index"] = ray_objects
        return outputs

    # ---- training ------------------------------------------------------------------------------
    def get_param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"codebook": list(self.codebook.parameters()), "hypernetwork": list(self.hypernetwork.parameters())}

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                update_every_num_iters=self.config.occupancy_update_every,
                func=self.update_occupancy,
            ),
            TrainingCallback(where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION], func=self.forget_display),
        ]

    def forget_display(self, step: int) -> None:
        """The prior changed: what is shown outside training is generated anew."""
        self._generated.clear()

    @torch.no_grad()
    def update_occupancy(self, step: int) -> None:
        """Refresh a round-robin share of the objects' occupancy grids (after the warm-up)."""
        if step < self.config.occupancy_warmup_steps:
            return
        per_update = min(self.config.occupancy_objects_per_update, self.codebook.num_objects)
        first = (step // self.config.occupancy_update_every) * per_update
        objects = torch.arange(first, first + per_update, device=self.device) % self.codebook.num_objects
        params = self.hypernetwork(self.codebook(objects, sample=False))
        self.occupancy.update(objects, lambda points: density_at(self.field, params, points))

    def get_metrics_dict(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        gt = self.renderer_rgb.blend_background(batch["image"].to(self.device), background_color="black")
        mse = torch.mean((outputs["rgb"].detach() - gt) ** 2)
        return {"psnr": -10.0 * torch.log10(mse.clamp_min(1e-10)), "samples_per_ray": outputs["num_samples"].mean()}

    def get_loss_dict(
        self, outputs: dict[str, Tensor], batch: dict[str, Tensor], metrics_dict: dict[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        pred, gt = blend_random_background(outputs["rgb"], outputs["accumulation"], batch["image"].to(self.device))
        losses = {"rgb_loss": torch.mean((pred - gt) ** 2)}
        if not torch.isfinite(losses["rgb_loss"]):
            raise DivergedError(
                "training diverged (the RGB loss is not finite); checkpoints already written are intact: "
                "resume from one with lower learning rates (--optimizers.hypernetwork.optimizer.lr)"
            )
        if self.training:
            objects = torch.unique(outputs["object_index"])
            losses["kl_loss"] = self.config.kl_weight * self.codebook.kl(objects)
        return losses

    # ---- evaluation ----------------------------------------------------------------------------
    def get_rgba_image(self, outputs: dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        """Un-blend the eval background: RGBA with the accumulation as alpha (used by ns-export)."""
        acc = outputs[output_name.replace("rgb", "accumulation")]
        background = self.renderer_rgb.get_background_color(
            self.config.eval_background_color, shape=outputs[output_name].shape, device=acc.device
        )
        rgb = (outputs[output_name] - background * (1.0 - acc)) / acc.clamp_min(1e-6)
        return torch.cat([rgb.clamp(0.0, 1.0), acc], dim=-1)

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Tensor]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        gt = self.renderer_rgb.blend_background(
            batch["image"].to(self.device), background_color=self.config.eval_background_color
        )
        pred = outputs["rgb"].clamp(0.0, 1.0)
        mse = torch.mean((pred - gt) ** 2)
        gt_nchw, pred_nchw = gt.permute(2, 0, 1)[None], pred.permute(2, 0, 1)[None]
        ssim = structural_similarity_index_measure(pred_nchw, gt_nchw, data_range=1.0)
        assert isinstance(ssim, Tensor)  # a tuple only with return_full_image=True
        metrics = {
            "psnr": float(-10.0 * torch.log10(mse.clamp_min(1e-10))),
            "ssim": float(ssim),
        }
        images = {
            "img": torch.cat([gt, pred], dim=1),
            "accumulation": colormaps.apply_colormap(outputs["accumulation"]),
            "depth": colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"]),
        }
        return metrics, images
