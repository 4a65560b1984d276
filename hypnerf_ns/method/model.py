"""HypNeRFModel: the category prior as a nerfstudio Model.

Lifecycle as in nerfstudio's nerfacto: `populate_modules` builds the codebook, hypernetwork,
field and occupancy grids; `get_outputs` renders a ray bundle whose rays carry their object
(`ray_bundle.metadata["object_index"]`); `get_loss_dict` is RGB MSE (on a random background,
so transparency is learnt) + KL of the codes; `get_image_metrics_and_images` is PSNR/SSIM on
white. Rays without an object (the viewer, nerfstudio's export and render tools) show the
object chosen in the viewer's controls, or a blend of two objects' codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, Type

import torch
from nerfacc import accumulate_along_rays
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.renderers import AccumulationRenderer, RGBRenderer
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torch import Tensor
from torchmetrics.functional import structural_similarity_index_measure

from hypnerf_ns.errors import DivergedError, HypnerfError
from hypnerf_ns.method.viewer import ObjectControls
from hypnerf_ns.nerf.encoding import HashGridSpec
from hypnerf_ns.nerf.field import HyperField
from hypnerf_ns.nerf.hypernetwork import Codebook, HyperNetwork, NeRFParams
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, load_codes
from hypnerf_ns.nerf.sampling import OccupancyGrids, march, occupancy_from_density, packed_weights, ray_aabb


@dataclass
class HypNeRFModelConfig(ModelConfig):
    """HyP-NeRF prior; defaults sized for a 2-core CPU (see README, "Default configuration")."""

    _target: Type = field(default_factory=lambda: HypNeRFModel)
    enable_collider: bool = False
    """Rays are clipped to the object box by the model itself."""
    collider_params: Optional[Dict[str, float]] = None
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
    entropy_weight: float = 0.0
    """Weight of the binary entropy of ray accumulation (pushes rays to empty or opaque)."""
    render_step_size: float = 1.0 / 128
    """Distance between samples along a ray, in scene units (the object box is 1 wide)."""
    occupancy_resolution: int = 32
    """Cells per axis of each object's occupancy grid."""
    display_occupancy_resolution: int = 64
    """Cells per axis of the occupancy grid of what rays without an object show (viewer, ns-render,
    ns-export), computed once per shown NeRF: finer than the training grids, so fewer empty samples."""
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
    active_object: Optional[str] = None
    """Object (id) shown for rays that carry none (viewer, ns-render, ns-export); default the first."""
    active_latent: Optional[Path] = None
    """Latent file (`hypnerf-ns invert`) shown instead of a training object; set by `hypnerf-ns select`."""
    active_nerf: Optional[Path] = None
    """Finetuned NeRF file (`hypnerf-ns finetune`) shown instead; set by `hypnerf-ns select`."""
    text_mapping: Optional[Path] = None
    """Text-to-codes file for the viewer's text box; `hypnerf-ns text` trains <run>/text.pt and sets this."""
    show_active_only: bool = False
    """Outside training, every ray shows the active object, even rays from other objects' cameras
    (ns-export draws rays from every training camera); set by `hypnerf-ns select`."""


class HypNeRFModel(Model):
    """Hypernetwork NeRF prior over a category of objects."""

    config: HypNeRFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        metadata = self.kwargs.get("metadata") or {}
        self.object_ids: List[str] = list(metadata.get("object_ids", []))
        self.object_names: List[str] = list(metadata.get("object_names", self.object_ids))
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
        density_threshold = -math.log(1.0 - cfg.occupancy_alpha_threshold) / cfg.render_step_size
        self.occupancy = OccupancyGrids(len(self.object_ids), cfg.occupancy_resolution, aabb, density_threshold)
        self.renderer_rgb = RGBRenderer(background_color="random")
        self.renderer_accumulation = AccumulationRenderer()
        self.controls = ObjectControls(self.codebook, self.hypernetwork, self.object_ids, cfg.active_object, cfg.text_mapping)
        self._generated: Dict[Any, Tuple[NeRFParams, Tensor]] = {}  # what -> (params, occupancy), see `generated`

    # ---- objects and codes ---------------------------------------------------------------
    def object_index(self, object_id: str) -> int:
        """Index of a training object by id (or name)."""
        for names in (self.object_ids, self.object_names):
            if object_id in names:
                return names.index(object_id)
        shown = ", ".join(self.object_ids[:10]) + (f", ... ({len(self.object_ids)} in all)" if len(self.object_ids) > 10 else "")
        raise KeyError(f"unknown object {object_id!r}; known: {shown}")

    def get_extra_state(self) -> Dict[str, Any]:
        """Object ids and names travel with the checkpoint."""
        return {"object_ids": self.object_ids, "object_names": self.object_names}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        if list(state["object_ids"]) != self.object_ids:
            raise HypnerfError(
                f"the checkpoint's {len(state['object_ids'])} objects differ from the {len(self.object_ids)} objects "
                "of --data: load it with the category it was trained on"
            )
        self.object_names = list(state["object_names"])

    def generated(self, what: Any, make_params: Callable[[], NeRFParams]) -> Tuple[NeRFParams, Tensor]:
        """NeRF parameters [B, ...] and occupancy grids [B, G, G, G] (G: `display_occupancy_resolution`,
        from the current density) of what `make_params` generates, kept under the key `what` until a
        training step changes the prior. Everything this model renders through nerfstudio outside
        training (viewer, evaluation images, ns-render, ns-export) goes through here, so one object
        looks the same however it is asked for. (The project's own tools render with `lib.rendering`,
        whose grids are built by `occupancy_of` at the training resolution.)"""
        if what not in self._generated:
            if len(self._generated) >= 8:  # a handful of shown things at a time, not a growing store
                self._generated.clear()
            with torch.no_grad():
                params = make_params()
                self._generated[what] = (params, self.occupancy_of(params, self.config.display_occupancy_resolution))
        return self._generated[what]

    def _displayed(self) -> Tuple[NeRFParams, Tensor]:
        """NeRF parameters [1, ...] and occupancy grid [1, G, G, G] of what rays without an object show:
        the selected latent or finetuned NeRF file if any, else what the viewer's controls show."""
        cfg = self.config
        if cfg.active_nerf is not None:
            return self.generated(("nerf", cfg.active_nerf), lambda: FinetunedNeRF.load(cfg.active_nerf, self.hypernetwork).params)
        if cfg.active_latent is not None:
            return self.generated(("latent", cfg.active_latent), lambda: self.hypernetwork(load_codes(cfg.active_latent, self.hypernetwork)))
        return self.generated(self.controls.shown(), lambda: self.hypernetwork(self.controls.codes()))

    # ---- rendering ---------------------------------------------------------------------------
    def density_at(self, points: Tensor, params: NeRFParams) -> Tensor:
        """Density [B, M] at points [B, M, 3] of B objects (params with B objects)."""
        num_objects, per_object = points.shape[:2]
        slot = torch.arange(num_objects, device=points.device).repeat_interleave(per_object)
        return self.field.density(points.reshape(-1, 3), slot, [per_object] * num_objects, params).reshape(num_objects, per_object)

    @torch.no_grad()
    def occupancy_of(self, params: NeRFParams, resolution: Optional[int] = None) -> Tensor:
        """Occupancy grids [B, G, G, G] of B generated NeRFs, from their density at cell centres
        (G: `resolution`, default that of the training grids)."""
        g = resolution or self.occupancy.resolution
        points = self.occupancy.cell_points(1, jitter=False, resolution=g).expand(len(params["tables"]), -1, -1)
        density = self.density_at(points, params).reshape(-1, g, g, g)
        return occupancy_from_density(density, self.occupancy.density_threshold, dilation=g // self.occupancy.resolution)

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        metadata = ray_bundle.metadata or {}
        if "object_index" in metadata and (self.training or not self.config.show_active_only):
            ray_objects = metadata["object_index"].reshape(-1).long()
            objects, slot = torch.unique(ray_objects, return_inverse=True)
            if self.training:
                params = self.hypernetwork(self.codebook(objects, sample=True))
                occupied = self.occupancy.occupied()[objects]
            else:  # evaluation shows a training object exactly as the viewer does
                params, occupied = self.generated(("objects", tuple(objects.tolist())), lambda: self.hypernetwork(self.codebook(objects, sample=False)))
        else:
            params, occupied = self._displayed()
            slot = torch.zeros(len(ray_bundle), dtype=torch.long, device=self.device)
        outputs = self.render(
            ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3), params, slot, occupied,
            background="random" if self.training else self.config.eval_background_color, jitter=self.training,
            normals=self.config.predict_normals and not self.training,
        )
        if self.training:
            outputs["object_index"] = ray_objects
        return outputs

    def render(
        self, origins: Tensor, directions: Tensor, params: NeRFParams, slot: Tensor, occupied: Tensor, *,
        background: str, jitter: bool, normals: bool, nears: Optional[Tensor] = None, fars: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Volume-render rays [R] under B generated NeRFs.

        Args:
            origins, directions: [R, 3] rays (unit directions).
            params: NeRF parameters of B objects.
            slot: [R] long, which of the B objects each ray looks at.
            occupied: [B, G, G, G] bool occupancy grid of each object.
            background: "random" (colour left unblended, for `blend_background_for_loss_computation`),
                "white" or "black".
            jitter: sample positions jittered within their step (training).
            normals: also output "normals" (costs a density gradient per ray).
            nears, fars: [R] optional segment of each ray to render (see `tasks.finetune.see_through`).

        Returns "rgb" [R, 3], "accumulation" [R, 1], "depth" [R, 1], "num_samples" [R, 1] (and "normals" [R, 3]).
        """
        num_rays = origins.shape[0]
        order = None
        if num_rays > 1 and bool((slot[1:] < slot[:-1]).any()):  # the field wants samples grouped by object
            order = torch.argsort(slot, stable=True)
            origins, directions, slot = origins[order], directions[order], slot[order]
            nears = None if nears is None else nears[order]
            fars = None if fars is None else fars[order]

        aabb = self.field.aabb
        t_near, t_far = ray_aabb(origins, directions, aabb)
        if nears is not None:
            t_near = torch.maximum(t_near, nears)
        if fars is not None:
            t_far = torch.minimum(t_far, fars)
        ray_index, t_starts, t_ends = march(origins, directions, t_near, t_far, self.config.render_step_size, occupied, slot, aabb, jitter=jitter)
        sample_slot = slot[ray_index]
        counts = torch.bincount(sample_slot, minlength=len(params["tables"])).tolist()
        positions = origins[ray_index] + directions[ray_index] * (0.5 * (t_starts + t_ends))[:, None]
        field_outputs = self.field(positions, directions[ray_index], sample_slot, counts, params)
        weights = packed_weights(field_outputs["density"][:, 0], t_ends - t_starts, ray_index, num_rays)[:, None]

        accumulation = self.renderer_accumulation(weights, ray_index, num_rays)
        depth = accumulate_along_rays(weights[:, 0], 0.5 * (t_starts + t_ends)[:, None], ray_index, num_rays) / (accumulation + 1e-10)
        hit = accumulation[:, 0] >= 0.5
        outputs = {
            "rgb": self.renderer_rgb(field_outputs["rgb"], weights, ray_index, num_rays, background_color=background),
            "accumulation": accumulation,
            "depth": torch.where(hit[:, None], depth, self.background_depth(origins, directions)[:, None]),
        }
        if normals:
            outputs["normals"] = self.surface_normals(origins + directions * depth, directions, hit, slot, params)
        outputs["num_samples"] = torch.bincount(ray_index, minlength=num_rays)[:, None].float()  # per ray
        if order is not None:
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(num_rays, device=order.device)
            outputs = {name: value[inverse] for name, value in outputs.items()}
        return outputs

    def background_depth(self, origins: Tensor, directions: Tensor) -> Tensor:
        """Depth [R] reported by rays that hit nothing: where they leave a box 4x the object box.

        Beyond every voxel depth-fusion tools look at (ns-export tsdf's default box is 2x ours),
        so those carve free space instead of building surfaces at faint fog.
        """
        _, t_far = ray_aabb(origins, directions, 4.0 * self.field.aabb)
        return t_far.clamp_min(0.0)

    def surface_normals(self, points: Tensor, directions: Tensor, hit: Tensor, slot: Tensor, params: NeRFParams) -> Tensor:
        """Normals [R, 3] in [0, 1] (nerfstudio's convention) at the surface points [R, 3] of rays
        [R] that `hit` one: minus the density gradient there, one evaluation per ray (not per
        sample); 0.5 (no direction) elsewhere. `slot` must be non-decreasing."""
        hit_slot = slot[hit]
        counts = torch.bincount(hit_slot, minlength=len(params["tables"])).tolist()
        found = self.field(points[hit], directions[hit], hit_slot, counts, params, compute_normals=True)
        normals = torch.zeros_like(points)
        normals[hit] = found["normals"].detach()
        return (normals + 1.0) / 2.0

    # ---- training ------------------------------------------------------------------------------
    def get_param_groups(self) -> Dict[str, List[torch.nn.Parameter]]:
        return {"codebook": list(self.codebook.parameters()), "hypernetwork": list(self.hypernetwork.parameters())}

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                update_every_num_iters=self.config.occupancy_update_every,
                func=self.update_occupancy,
            ),
            TrainingCallback(where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION], func=self.forget_display),
        ]

    def forget_display(self, step: int) -> None:  # noqa: ARG002 - a training callback's signature
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
        self.occupancy.update(objects, lambda points: self.density_at(points, params))

    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        gt = self.renderer_rgb.blend_background(batch["image"].to(self.device), background_color="black")
        mse = torch.mean((outputs["rgb"].detach() - gt) ** 2)
        return {"psnr": -10.0 * torch.log10(mse.clamp_min(1e-10)), "samples_per_ray": outputs["num_samples"].mean()}

    def get_loss_dict(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor], metrics_dict: Optional[Dict[str, Tensor]] = None
    ) -> Dict[str, Tensor]:
        pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
            outputs["rgb"], outputs["accumulation"], batch["image"].to(self.device)
        )
        losses = {"rgb_loss": torch.mean((pred - gt) ** 2)}
        if not torch.isfinite(losses["rgb_loss"]):
            raise DivergedError(
                "training diverged (the RGB loss is not finite); checkpoints already written are intact: "
                "resume from one with lower learning rates (--optimizers.hypernetwork.optimizer.lr)"
            )
        if self.training:
            objects = torch.unique(outputs["object_index"])
            losses["kl_loss"] = self.config.kl_weight * self.codebook.kl(objects)
            if self.config.entropy_weight > 0:
                acc = outputs["accumulation"].clamp(1e-5, 1 - 1e-5)
                entropy = -(acc * torch.log(acc) + (1 - acc) * torch.log(1 - acc)).mean()
                losses["entropy_loss"] = self.config.entropy_weight * entropy
        return losses

    # ---- evaluation ----------------------------------------------------------------------------
    def get_rgba_image(self, outputs: Dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        """Un-blend the eval background: RGBA with the accumulation as alpha (used by ns-export)."""
        acc = outputs[output_name.replace("rgb", "accumulation")]
        background = self.renderer_rgb.get_background_color(
            self.config.eval_background_color, shape=outputs[output_name].shape, device=acc.device
        )
        rgb = (outputs[output_name] - background * (1.0 - acc)) / acc.clamp_min(1e-6)
        return torch.cat([rgb.clamp(0.0, 1.0), acc], dim=-1)

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        gt = self.renderer_rgb.blend_background(
            batch["image"].to(self.device), background_color=self.config.eval_background_color
        )
        pred = outputs["rgb"].clamp(0.0, 1.0)
        mse = torch.mean((pred - gt) ** 2)
        gt_nchw, pred_nchw = gt.permute(2, 0, 1)[None], pred.permute(2, 0, 1)[None]
        metrics = {
            "psnr": float(-10.0 * torch.log10(mse.clamp_min(1e-10))),
            "ssim": float(structural_similarity_index_measure(pred_nchw, gt_nchw, data_range=1.0)),
        }
        images = {
            "img": torch.cat([gt, pred], dim=1),
            "accumulation": colormaps.apply_colormap(outputs["accumulation"]),
            "depth": colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"]),
        }
        return metrics, images
