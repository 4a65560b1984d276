"""`hypnerf-ns export mesh`: a coloured triangle mesh straight from a generated NeRF's density.

A NeRF's density is not a signed distance, so nerfstudio's `ns-export marching-cubes` (SDF
models only, CUDA only) does not apply. Here the density is sampled on a regular grid over the
object box (no rendering), marching cubes extracts the level set at `level` (skimage), and each
vertex is coloured by the colour MLP looking at it along its normal (the density gradient),
i.e. from outside.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor

from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import NeRFParams
from hypnerf_ns.nerf.rendering import density_at
from hypnerf_ns.nerf.sampling import grid_points

DEFAULT_LEVEL = 20.0
"""Density of the surface: a 1/128 step through it is 14 % opaque. Chosen on 6 dev chairs (test-view
silhouette IoU 0.87-0.93 at 20, 0.74-0.89 at 10; 0.65-0.82 at 50 on 3 of them, without floater removal)."""


def density_grid(model: HypNeRFModel, params: NeRFParams, resolution: int, chunk: int = 262144) -> Tensor:
    """Density [N, N, N] (x, y, z order) of one NeRF at the centres of an N^3 grid over the object box."""
    points = grid_points(model.field.aabb, resolution)[0]
    with torch.no_grad():
        density = torch.cat(
            [
                density_at(model.field, params, points[start : start + chunk][None])[0]
                for start in range(0, len(points), chunk)
            ]
        )
    return density.reshape(resolution, resolution, resolution)


def vertex_colours(model: HypNeRFModel, params: NeRFParams, vertices: Tensor) -> tuple[Tensor, Tensor]:
    """RGB [V, 3] in [0, 1] of vertices [V, 3], seen along their outward normals, and those unit normals [V, 3]."""
    slot = torch.zeros(len(vertices), dtype=torch.long, device=vertices.device)
    counts = [len(vertices)]
    normals = model.field(vertices, torch.zeros_like(vertices), slot, counts, params, compute_normals=True)[
        "normals"
    ].detach()
    with torch.no_grad():
        rgb = model.field(vertices, -normals, slot, counts, params)["rgb"]
    return rgb, normals


def density_mesh(
    model: HypNeRFModel,
    params: NeRFParams,
    resolution: int = 128,
    level: float = DEFAULT_LEVEL,
    min_share: float = 0.01,
) -> trimesh.Trimesh:
    """The level set {density = `level`} of one NeRF as a mesh in world units with vertex colours;
    connected pieces with less than `min_share` of the faces (floaters) are dropped."""
    from skimage.measure import marching_cubes

    grid = density_grid(model, params, resolution).cpu().numpy()
    if not grid.max() > level > grid.min():
        raise ValueError(f"density never crosses {level} (range {grid.min():.3g}..{grid.max():.3g}): nothing to mesh")
    low, high = model.field.aabb[0].cpu().numpy(), model.field.aabb[1].cpu().numpy()
    spacing = (high - low) / resolution
    closed = np.pad(grid, 1)  # empty space around the box closes surfaces cut by its faces
    vertices, faces, _, _ = marching_cubes(closed, level=level, spacing=tuple(spacing))
    vertices = vertices + low - spacing / 2  # sample k + 1 of the padded grid sits at the centre of cell k
    vertices = np.clip(vertices, low, high)  # caps where the box cuts the object: onto the box faces
    mesh = without_floaters(trimesh.Trimesh(vertices, faces[:, ::-1], process=False), min_share)
    rgb, normals = vertex_colours(model, params, torch.from_numpy(mesh.vertices).float().to(model.device))
    colours = np.concatenate([(rgb.cpu().numpy() * 255).round(), np.full((len(mesh.vertices), 1), 255)], axis=1).astype(
        np.uint8
    )
    return trimesh.Trimesh(
        mesh.vertices, mesh.faces, vertex_normals=normals.cpu().numpy(), vertex_colors=colours, process=False
    )


def without_floaters(mesh: trimesh.Trimesh, min_share: float) -> trimesh.Trimesh:
    """The connected pieces of `mesh` that hold at least `min_share` of its faces (all if none does)."""
    pieces = mesh.split(only_watertight=False)
    kept = [piece for piece in pieces if len(piece.faces) >= min_share * len(mesh.faces)]
    return trimesh.util.concatenate(kept) if kept else mesh


def silhouettes(mesh: trimesh.Trimesh, cameras: Cameras) -> Tensor:
    """Boolean masks [C, H, W]: which pixels of each camera see the mesh (ray casting)."""
    masks = []
    for index in range(len(cameras)):
        rays = cameras.generate_rays(camera_indices=index)
        height, width = rays.origins.shape[:2]
        origins, directions = rays.origins.reshape(-1, 3).numpy(), rays.directions.reshape(-1, 3).numpy()
        hit = mesh.ray.intersects_any(origins, directions)
        masks.append(torch.from_numpy(hit).reshape(height, width))
    return torch.stack(masks)


def silhouette_iou(mesh: trimesh.Trimesh, cameras: Cameras, alpha: Tensor) -> float:
    """Mean IoU over views of the mesh's silhouettes and ground-truth alpha masks [C, H, W] (> 0.5)."""
    predicted, truth = silhouettes(mesh, cameras), alpha > 0.5
    intersection = (predicted & truth).flatten(1).sum(1).float()
    union = (predicted | truth).flatten(1).sum(1).float().clamp_min(1)
    return float((intersection / union).mean())
