"""Render textured meshes into RGBA views on the CPU: trimesh loads, Embree casts the rays.

Loading flattens a mesh file (OBJ+MTL+textures, GLB/GLTF, PLY, ...) into one `Surface`: the
triangles of every part, with each triangle's albedo source (a texture with UVs, a material
colour, or vertex colours). Rendering casts one ray per sub-pixel through Embree (trimesh's
`ray_pyembree`, installed with nerfstudio), shades the first hit with view-independent Lambert
lighting fixed in the world (so every view of an object agrees, as a NeRF assumes), and averages
sub-pixels for antialiased RGBA with a transparent background.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import trimesh

# Shading: ambient + two directional lights fixed in the world (Z up), a key from above-front
# and a weaker fill from the other side; view-independent, so views are consistent.
AMBIENT = 0.35
LIGHTS = ((np.array([0.5, -0.6, 0.8]), 0.55), (np.array([-0.6, 0.5, 0.3]), 0.3))


class MeshError(Exception):
    """A mesh file that cannot be rendered; the message says why (the caller names the file)."""


@dataclass
class Surface:
    """All triangles of one object, ready for ray casting.

    Shapes: F triangles, M materials, V vertices.
    """

    vertices: np.ndarray
    """[V, 3] float64 positions."""
    faces: np.ndarray
    """[F, 3] int64 vertex indices."""
    corner_uv: np.ndarray
    """[F, 3, 2] float32 texture coordinates at each triangle corner (0 where untextured)."""
    corner_colour: np.ndarray
    """[F, 3, 3] float32 RGB in [0, 1] at each corner: material or vertex colour, multiplied with the texture."""
    face_texture: np.ndarray
    """[F] int64 index into `textures`, -1 for none."""
    textures: list[np.ndarray]
    """[H, W, 3] float32 RGB images in [0, 1]."""

    def transformed(self, matrix: np.ndarray) -> Surface:
        """This surface with vertices mapped by a 4x4 (or 3x3) matrix."""
        m = np.eye(4)
        m[: matrix.shape[0], : matrix.shape[1]] = matrix
        vertices = self.vertices @ m[:3, :3].T + m[:3, 3]
        return Surface(vertices, self.faces, self.corner_uv, self.corner_colour, self.face_texture, self.textures)


def missing_textures(path: Path) -> list[Path]:
    """Texture files an OBJ's material libraries name but that do not exist."""
    if path.suffix.lower() != ".obj":
        return []
    missing: list[Path] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for library in re.findall(r"^\s*mtllib\s+(.+?)\s*$", text, flags=re.MULTILINE):
        library_path = path.parent / library
        if not library_path.is_file():
            missing.append(library_path)
            continue
        mtl = library_path.read_text(encoding="utf-8", errors="replace")
        for texture in re.findall(r"^\s*map_Kd\s+(?:-\S+\s+\S+\s+)*(.+?)\s*$", mtl, flags=re.MULTILINE):
            if not (library_path.parent / texture).is_file():
                missing.append(library_path.parent / texture)
    return missing


def _albedo_of(part: trimesh.Trimesh, textures: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Corner UVs [F, 3, 2], corner colours [F, 3, 3] and texture index of one mesh part."""
    faces = part.faces
    uv = np.zeros((len(faces), 3, 2), dtype=np.float32)
    colour = np.full((len(faces), 3, 3), 0.7, dtype=np.float32)
    texture_index = -1
    visual = part.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        if isinstance(material, trimesh.visual.material.PBRMaterial):
            material = material.to_simple()
        image = getattr(material, "image", None)
        if image is not None and visual.uv is not None and len(visual.uv) == len(part.vertices):
            textures.append(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
            texture_index = len(textures) - 1
            uv = np.asarray(visual.uv, dtype=np.float32)[faces]
            colour[:] = 1.0
        else:
            colour[:] = np.asarray(material.diffuse[:3], dtype=np.float32) / 255.0
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
        colour = np.asarray(visual.vertex_colors[:, :3], dtype=np.float32)[faces] / 255.0
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "face":
        colour = np.repeat(np.asarray(visual.face_colors[:, None, :3], dtype=np.float32) / 255.0, 3, axis=1)
    return uv, colour, texture_index


def load_surface(path: Path) -> Surface:
    """Every triangle of a mesh file with its albedo; raises MeshError if there is nothing to render."""
    missing = missing_textures(path)
    if missing:
        raise MeshError(f"texture file {missing[0]} is missing")
    try:
        scene = cast(trimesh.Scene, trimesh.load(str(path), force="scene", process=False))  # force="scene": a Scene
    except Exception as error:  # trimesh raises many types for unreadable files
        raise MeshError(f"unreadable mesh ({type(error).__name__}: {error})") from None
    parts = [g for g in scene.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    if not parts:
        raise MeshError("no triangles")
    textures: list[np.ndarray] = []
    vertices, faces, uvs, colours, face_texture = [], [], [], [], []
    offset = 0
    for part in parts:
        uv, colour, texture_index = _albedo_of(part, textures)
        vertices.append(np.asarray(part.vertices, dtype=np.float64))
        faces.append(np.asarray(part.faces, dtype=np.int64) + offset)
        uvs.append(uv)
        colours.append(colour)
        face_texture.append(np.full(len(part.faces), texture_index, dtype=np.int64))
        offset += len(part.vertices)
    surface = Surface(
        np.concatenate(vertices),
        np.concatenate(faces),
        np.concatenate(uvs),
        np.concatenate(colours),
        np.concatenate(face_texture),
        textures,
    )
    if not np.isfinite(surface.vertices).all():
        raise MeshError("non-finite vertex positions")
    corners = surface.vertices[surface.faces]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=-1)
    if not (area > 0).any():
        raise MeshError("all triangles are degenerate (zero area)")
    return surface


def normalise(surface: Surface, rotation: np.ndarray) -> Surface:
    """Rotate, then centre the bounding box at the origin and scale its largest side to 1."""
    rotated = surface.transformed(rotation)
    low, high = rotated.vertices.min(axis=0), rotated.vertices.max(axis=0)
    scale = 1.0 / float((high - low).max())
    m = np.eye(4)
    m[:3, :3] *= scale
    m[:3, 3] = -scale * (low + high) / 2.0
    return rotated.transformed(m)


Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation by +90 degrees about X: +Y (up in OBJ/GLTF) goes to +Z, the front (+Z) to -Y."""
X_FRONT_TO_MINUS_Y = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
"""Rotation by -90 degrees about Z: a Z-up object facing +X (Infinigen's furniture) faces -Y.

Every category shares one object frame: Z up, the front towards -Y (a chair's back at +Y), so
that a prior trained on several sources sees one chair orientation, not two."""


def look_at_origin(eye: np.ndarray) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world at `eye` looking at the origin, Z up."""
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-8:  # looking straight up or down
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -forward, eye
    return pose


def sample_cameras(
    count: int, radius: float, elevation_deg: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """[count, 4, 4] cameras on a sphere around the origin: azimuth uniform, elevation uniform in range."""
    azimuth = rng.uniform(0.0, 2.0 * math.pi, count)
    elevation = np.radians(rng.uniform(elevation_deg[0], elevation_deg[1], count))
    eyes = radius * np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], -1
    )
    return np.stack([look_at_origin(eye) for eye in eyes])


def _sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup with wrap-around: [N, 2] UVs (origin bottom-left) -> [N, 3] RGB."""
    height, width, _ = texture.shape
    x = (uv[:, 0] % 1.0) * width - 0.5
    y = (1.0 - uv[:, 1] % 1.0) * height - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.astype(np.int64) % width, y0.astype(np.int64) % height
    x1, y1 = (x0 + 1) % width, (y0 + 1) % height
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


class Renderer:
    """Ray-casts one Surface from many cameras (the Embree scene is built once)."""

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        # `mesh.ray` is Embree's intersector when embreex is installed, trimesh's numpy one otherwise.
        self.intersector = trimesh.Trimesh(surface.vertices, surface.faces, process=False).ray
        corners = surface.vertices[surface.faces]
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        self.face_normals = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)

    def _shade(self, face: np.ndarray, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """[N] hit triangles, [N, 3] hit points and ray directions -> [N, 3] shaded RGB in [0, 1]."""
        corners = self.surface.vertices[self.surface.faces[face]]
        barycentric = trimesh.triangles.points_to_barycentric(corners, points)[:, :, None].astype(np.float32)
        albedo = (self.surface.corner_colour[face] * barycentric).sum(1)
        texture_of_hit = self.surface.face_texture[face]
        for index in np.unique(texture_of_hit[texture_of_hit >= 0]):
            hits = texture_of_hit == index
            uv = (self.surface.corner_uv[face[hits]] * barycentric[hits]).sum(1)
            albedo[hits] *= _sample_texture(self.surface.textures[index], uv)
        normals = self.face_normals[face]
        normals = np.where((normals * directions).sum(-1, keepdims=True) > 0, -normals, normals)  # two-sided
        light = np.full(len(face), AMBIENT)
        for direction, intensity in LIGHTS:
            light += intensity * np.clip(normals @ (direction / np.linalg.norm(direction)), 0.0, None)
        return np.clip(albedo * light[:, None], 0.0, 1.0)

    def render(
        self, camera_to_world: np.ndarray, width: int, height: int, focal: float, supersample: int = 2
    ) -> np.ndarray:
        """One view: [4, 4] OpenGL camera-to-world -> [height, width, 4] uint8 RGBA.

        Each pixel averages supersample x supersample rays (premultiplied), for antialiased edges.
        """
        s = supersample
        offsets = (np.arange(s) + 0.5) / s
        px = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)  # [W*s]
        py = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)  # [H*s]
        gx, gy = np.meshgrid(px, py)  # [H*s, W*s]
        camera_dirs = np.stack([(gx - width / 2) / focal, -(gy - height / 2) / focal, -np.ones_like(gx)], -1).reshape(
            -1, 3
        )
        directions = camera_dirs @ camera_to_world[:3, :3].T
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        origins = np.broadcast_to(camera_to_world[:3, 3], directions.shape)
        face, ray, points = self.intersector.intersects_id(
            origins, directions, multiple_hits=False, return_locations=True
        )
        rgba = np.zeros((len(directions), 4), dtype=np.float32)
        if len(face):
            rgba[ray, :3] = self._shade(face, points, directions[ray])
            rgba[ray, 3] = 1.0
        rgba = rgba.reshape(height, s, width, s, 4).mean(axis=(1, 3))
        alpha = rgba[..., 3:]
        rgb = np.where(alpha > 0, rgba[..., :3] / np.maximum(alpha, 1e-6), 0.0)  # un-premultiply
        return np.concatenate([rgb, alpha], -1).__mul__(255.0).round().clip(0, 255).astype(np.uint8)


def focal_from_fov(width: int, fov_deg: float) -> float:
    """Focal length in pixels for a horizontal field of view."""
    return 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
