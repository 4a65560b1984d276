"""Cameras around an object: looking at the origin from a sphere, Z up, OpenGL convention
(as nerfstudio and the nerf-synthetic layout), with the intrinsics of a reference camera."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from nerfstudio.cameras.cameras import Cameras, CameraType

from hypnerf_ns.lib.prior import Prior
from hypnerf_ns.lib.views import load_cameras

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def sphere_cameras(
    reference: Cameras, azimuths: Sequence[float], elevations: Sequence[float], radius: float
) -> Cameras:
    """One camera per (azimuth, elevation) pair (radians) at distance `radius`, looking at the
    origin, with the intrinsics and image size of `reference` (its first camera)."""
    poses = []
    for azimuth, elevation in zip(azimuths, elevations, strict=True):
        eye = radius * torch.tensor(
            [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
        )
        back = eye / eye.norm()  # OpenGL camera: looks down -z
        right = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back), dim=0)
        up = torch.linalg.cross(back, right)
        poses.append(torch.stack([right, up, back, eye], dim=1))
    return Cameras(
        camera_to_worlds=torch.stack(poses),
        fx=reference.fx[0],
        fy=reference.fy[0],
        cx=reference.cx[0],
        cy=reference.cy[0],
        width=reference.width[0],
        height=reference.height[0],
        camera_type=CameraType.PERSPECTIVE,
    )


def orbit_cameras(
    reference: Cameras, count: int, radius: float, elevation_deg: tuple[float, float] = (-5.0, 60.0)
) -> Cameras:
    """`count` cameras spread over the sphere: elevations evenly over `elevation_deg`, azimuths a golden-angle
    spiral."""
    low, high = (math.radians(e) for e in elevation_deg)
    elevations = [low + (high - low) * (k + 0.5) / count for k in range(count)]
    return sphere_cameras(reference, [k * GOLDEN_ANGLE for k in range(count)], elevations, radius)


def turntable_cameras(reference: Cameras, count: int, radius: float, elevation_deg: float = 20.0) -> Cameras:
    """`count` cameras once around the object at one elevation, in order (a turntable video)."""
    return sphere_cameras(
        reference, [2 * math.pi * k / count for k in range(count)], [math.radians(elevation_deg)] * count, radius
    )


def reference_camera(folder: Path, view: int, scale: float) -> tuple[Cameras, float]:
    """Training view `view` of an object folder (scaled by `scale`) and its distance from the origin."""
    reference, _ = load_cameras(folder, "train", [view], scale)
    return reference, float(reference.camera_to_worlds[0, :3, 3].norm())


def orbit_like(folder: Path, view: int, scale: float, count: int) -> Cameras:
    """`orbit_cameras` with the intrinsics and distance of training view `view` of an object folder."""
    reference, radius = reference_camera(folder, view, scale)
    return orbit_cameras(reference, count, radius)


def category_cameras(prior: Prior, resolution: int) -> tuple[Cameras, float]:
    """The first training object's first view, resized to `resolution` pixels wide, and its distance."""
    reference, radius = reference_camera(prior.training_folder(prior.model.object_ids[0]), 0, 1.0)
    reference.rescale_output_resolution(resolution / float(reference.width[0]))
    return reference, radius


def category_turntable(prior: Prior, frames: int, resolution: int, elevation_deg: float = 20.0) -> Cameras:
    """`frames` cameras once around the object, with the category's intrinsics and distance (`category_cameras`)."""
    reference, radius = category_cameras(prior, resolution)
    return turntable_cameras(reference, frames, radius, elevation_deg)
