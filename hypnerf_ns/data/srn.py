"""`hypnerf-ns data srn`: SRN renders (ShapeNet cars / chairs) -> a category folder.

Input, one folder per object, as published with Scene Representation Networks (Sitzmann et al.
2019) and read by pixelNeRF, HyP-NeRF's baselines and others:

    DIR/<object>/rgb/<frame>.png     RGB (or RGBA), white background
    DIR/<object>/pose/<frame>.txt    camera-to-world 4x4: 16 numbers, one line or four
    DIR/<object>/intrinsics.txt      line 1 `f cx cy 0.`, line 2 grid barycenter (3 numbers),
                                     line 3 scale, line 4 `height width` of the image f, cx, cy
                                     refer to

Format facts and where they come from:
- intrinsics.txt: `parse_intrinsics` in vsitzmann/scene-representation-networks `util.py` reads
  `f, cx, cy, _` from line 1, the grid barycenter from line 2, a scale from line 3 and `height
  width` from line 4, then rescales to the loaded side length s: cx * s / width, cy * s / height,
  f * s / height. Its loader (`dataio.SceneInstanceDataset`) uses only f, cx, cy; lines 2-3 (and
  an optional 5th line) are ignored here as well. pixelNeRF (sxyu/pixel-nerf
  `src/data/SRNDataset.py`) reads `focal, cx, cy` from line 1 and `height, width` from the last.
- poses: `data_util.load_pose` reads 16 numbers on one line or four lines of four.
  Camera-to-world in the OpenCV convention: `geometry.lift` maps pixel (u, v) to
  ((u - cx) / f * z, (v - cy) / f * z, z) (v grows downwards, z > 0 in front) and
  `geometry.world_from_xy_depth` multiplies those camera points by the pose. pixelNeRF turns it
  into OpenGL with `pose @ diag(1, -1, -1, 1)`; so do we.
- images: SRN's `load_rgb` keeps the first three channels; the background is white (pixelNeRF's
  object mask is "pixel != 255").
- frames: images and poses share a frame name (`000000.png`, `000000.txt`); both loaders sort the
  two lists and zip them. Here they are matched by name and a missing partner is an error.
- principal point: SRN's intrinsics scale as continuous image coordinates (cx = width / 2 at every
  resolution), i.e. the optical axis passes through the image centre; nerfstudio uses the same
  convention (pixel (i, j) is sampled at (j + 0.5, i + 0.5)), so cx, cy are only rescaled.
- up axis: ShapeNetCore v2 meshes are Y-up with the front towards -Z (shapenet.org /
  graviti ShapeNet page); SRN's `data_util.look_at` also uses [0, 1, 0] as up. `up="y"` rotates
  that to our Z-up (+90 degrees about X, the same rotation as `data meshes`).

Scale: ShapeNet models are "aligned and size normalized" (shapenet.org/annotations), to about
[-0.5, 0.5]^3 (e.g. point-cloud-utils' ShapeNet example; its issue #53 shows a few v2 models a
little outside or off-centre). That already is our box, so the default `scale` is 1.0; pixelNeRF's
ray bounds for SRN cars (near 0.8, far 1.8: an interval 1.0 long) agree. Every converted object is
checked against the box from its silhouettes (`box_fit`); an object that sticks out gets a warning
with a `--scale` that would fit it.

The shared machinery (object loop, up/scale transform, split rule, fit check) lives here and is
also used by the ABO converter (`abo.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np
from PIL import Image
from rich.console import Console
from rich.markup import escape

from hypnerf_ns.data.render import Y_UP_TO_Z_UP
from hypnerf_ns.data.writer import View, write_index, write_object
from hypnerf_ns.errors import HypnerfError, InputError
from hypnerf_ns.progress import progress_bar

if TYPE_CHECKING:
    from rich.progress import Progress

CONSOLE = Console()
UP_TO_Z: dict[str, np.ndarray] = {
    "y": Y_UP_TO_Z_UP,
    "z": np.eye(3),
}
"""[3, 3] rotation taking the input world's up axis to +Z."""
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplied onto a camera-to-world: flips the camera's y (down -> up) and z (forward -> backward)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BOX_HALF_SIZE = 0.5
"""Objects must fit [-0.5, 0.5]^3 (the category dataparser's scene box)."""
OUTSIDE_TOLERANCE = 0.001
"""Fraction of object pixels allowed to look outside the box before warning (stray pixels)."""

T = TypeVar("T")


@dataclass
class ObjectData:
    """All views of one converted object, in our world (Z-up, scaled), before splitting."""

    views: list[View]
    focal: float
    """Focal length in pixels of the stored images."""
    cx: float
    cy: float


# ---------------------------------------------------------------- shared by the converters


def object_folders(root: Path) -> list[Path]:
    """Sorted, non-hidden sub-folders of `root` (one per object), or an InputError."""
    if not root.exists():
        raise InputError(root, "no such folder")
    if not root.is_dir():
        raise InputError(root, "not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(root, "no object folders in it (expected one sub-folder per object)")
    return folders


def load_image(path: Path, mode: str | None = None) -> Image.Image:
    """The decoded image (converted to `mode` if given), or an InputError naming the file."""
    if not path.is_file():
        raise InputError(path, "missing")
    try:
        with Image.open(path) as image:
            return image.convert(mode) if mode else image.copy()
    except OSError:
        raise InputError(path, "not a readable image") from None


def check_same_size(path: Path, image: np.ndarray, views: Sequence[View]) -> None:
    """InputError unless `image` ([H, W, C]) has the size of the views read before it."""
    if views and image.shape[:2] != views[0].image.shape[:2]:
        (h, w), (h0, w0) = image.shape[:2], views[0].image.shape[:2]
        raise InputError(path, f"image is {w}x{h} but the object's first image is {w0}x{h0}")


def to_category_frame(camera_to_world: np.ndarray, up: str, scale: float) -> np.ndarray:
    """[4, 4] OpenGL camera-to-world in the input world -> ours: `up` rotated to +Z, translation scaled."""
    rotation = UP_TO_Z[up]
    pose = np.eye(4)
    pose[:3, :3] = rotation @ camera_to_world[:3, :3]
    pose[:3, 3] = scale * (rotation @ camera_to_world[:3, 3])
    return pose


def split_views(views: Sequence[T], test_every: int, val_every: int) -> dict[str, list[T]]:
    """Deterministic split by frame order.

    Views 0, n, 2n, ... (n = test_every) go to test; of the others, the 1st, (m+1)-th, ...
    (m = val_every) go to val; the rest train.
    """
    test = [v for k, v in enumerate(views) if k % test_every == 0]
    rest = [v for k, v in enumerate(views) if k % test_every != 0]
    val = [v for k, v in enumerate(rest) if k % val_every == 0]
    train = [v for k, v in enumerate(rest) if k % val_every != 0]
    return {"train": train, "val": val, "test": test}


def check_options(scale: float, test_every: int, val_every: int) -> None:
    """One-line error for option values the split rule or the transform cannot use."""
    if not scale > 0:
        raise HypnerfError(f"--scale must be positive, got {scale}")
    if test_every < 2 or val_every < 2:
        raise HypnerfError(f"--test-every and --val-every must be at least 2, got {test_every} and {val_every}")


def box_fit(views: Sequence[View], focal: float, cx: float, cy: float) -> tuple[float, float]:
    """How the object sits in [-0.5, 0.5]^3, judged from its silhouettes (alpha > 127).

    A camera ray through an object pixel meets the object, so when it misses the box the object
    sticks out. Returns (fraction of object pixels whose ray misses the box, largest distance of
    an object pixel's ray from the origin). Scaling the world by 0.5 / that distance brings every
    such ray within 0.5 of the centre, hence into the box.
    """
    outside, total, reach = 0, 0, 0.0
    for view in views:
        rows, cols = np.nonzero(view.image[..., 3] > 127)  # [P] each
        if rows.size == 0:
            continue
        camera = np.stack(
            [(cols + 0.5 - cx) / focal, (cy - rows - 0.5) / focal, -np.ones(rows.size)], axis=-1
        )  # [P, 3]
        directions = camera @ view.camera_to_world[:3, :3].T  # [P, 3] world
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        origin = view.camera_to_world[:3, 3]  # [3]
        with np.errstate(divide="ignore", invalid="ignore"):
            t0, t1 = (-BOX_HALF_SIZE - origin) / directions, (BOX_HALF_SIZE - origin) / directions  # [P, 3]
        near, far = np.minimum(t0, t1).max(axis=-1), np.maximum(t0, t1).min(axis=-1)  # [P]
        outside += int(np.count_nonzero(~((near <= far) & (far > 0))))
        total += rows.size
        reach = max(reach, float(np.linalg.norm(np.cross(origin, directions), axis=-1).max()))
    return (outside / total if total else 0.0), reach


def warn(progress: Progress, message: str) -> None:
    """A one-line yellow warning above the progress bar (never wrapped, markup in `message` escaped)."""
    progress.console.print(f"[yellow]warning[/yellow]: {escape(message)}", soft_wrap=True)


def convert_category(
    folders: Sequence[Path],
    load: Callable[[Path], ObjectData],
    output: Path,
    category: str,
    source: str,
    test_every: int,
    val_every: int,
    scale: float,
) -> list[str]:
    """Load, split and write every object folder, then objects.json; returns the ids written.

    An object whose files are broken (`load` raises InputError) is skipped with a warning naming
    the file. Ids and names are the folder names.
    """
    written: list[str] = []
    with progress_bar(console=CONSOLE) as progress:
        task = progress.add_task(f"converting {source} objects", total=len(folders))
        for folder in folders:
            try:
                data = load(folder)
                splits = split_views(data.views, test_every, val_every)
                empty = [name for name, views in splits.items() if not views]
                if empty:
                    raise InputError(
                        folder,
                        f"{len(data.views)} views leave the {empty[0]} split empty (see --test-every, --val-every)",
                    )
            except InputError as error:
                warn(progress, f"skipping {folder.name}: {error.path}: {error.problem}")
                progress.advance(task)
                continue
            write_object(output / folder.name, splits, data.focal, data.cx, data.cy)
            outside, reach = box_fit(data.views, data.focal, data.cx, data.cy)
            if outside > OUTSIDE_TOLERANCE:
                warn(
                    progress,
                    f"{folder.name}: {outside:.1%} of its object pixels look outside [-0.5, 0.5]^3 "
                    f"at --scale {scale:g}; try --scale {scale * BOX_HALF_SIZE / reach:.3g}",
                )
            written.append(folder.name)
            progress.advance(task)
    if not written:
        raise InputError(folders[0].parent, "no object could be converted (see the warnings above)")
    write_index(output, category, [{"id": i, "name": i, "source": source} for i in written])
    return written


# ---------------------------------------------------------------- SRN


def read_intrinsics(path: Path) -> tuple[float, float, float, int, int]:
    """(f, cx, cy, height, width) of an SRN intrinsics.txt; f, cx, cy refer to a height x width image."""
    if not path.is_file():
        raise InputError(path, "missing")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        f, cx, cy = (float(x) for x in lines[0].split()[:3])
        height, width = (int(float(x)) for x in lines[3].split()[:2])
    except (IndexError, ValueError):
        raise InputError(path, "expected `f cx cy 0.` on line 1 and `height width` on line 4") from None
    if not (f > 0 and height > 0 and width > 0):
        raise InputError(path, f"focal length and image size must be positive, got f={f}, {width}x{height}")
    return f, cx, cy, height, width


def read_pose(path: Path) -> np.ndarray:
    """[4, 4] camera-to-world of an SRN pose file (16 numbers), checked to be a rigid transform."""
    try:
        pose = np.loadtxt(path, dtype=np.float64).reshape(4, 4)
    except ValueError:
        raise InputError(path, "expected 16 numbers (a 4x4 camera-to-world matrix)") from None
    rotation = pose[:3, :3]
    if not np.isfinite(pose).all() or not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-3):
        raise InputError(path, "not a rigid camera-to-world transform (rotation part is not orthonormal)")
    return pose


def srn_rgba(path: Path, white_threshold: int) -> np.ndarray:
    """[H, W, 4] uint8 RGBA of an SRN image: its own alpha if it has one, else 0 where white.

    A pixel is background when every channel is within `white_threshold` of 255 (so an object's
    pure-white parts become transparent too, as with pixelNeRF's mask).
    """
    image = load_image(path)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    rgba = np.array(image.convert("RGBA"))
    if not has_alpha:
        distance = 255 - rgba[..., :3].min(axis=-1).astype(np.int32)  # [H, W] Chebyshev distance to white
        rgba[..., 3] = np.where(distance > white_threshold, 255, 0)
    return rgba


def frame_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, pose file) of each frame of an SRN object, matched by frame name, in name order."""
    rgb_dir, pose_dir = folder / "rgb", folder / "pose"
    for sub in (rgb_dir, pose_dir):
        if not sub.is_dir():
            raise InputError(sub, "missing folder")
    images = {p.stem: p for p in rgb_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    poses = {p.stem: p for p in pose_dir.glob("*.txt")}
    if not images:
        raise InputError(rgb_dir, f"no images ({', '.join(IMAGE_SUFFIXES)})")
    without_pose, without_image = sorted(images.keys() - poses.keys()), sorted(poses.keys() - images.keys())
    if without_pose:
        raise InputError(pose_dir / f"{without_pose[0]}.txt", f"missing (the pose of {images[without_pose[0]].name})")
    if without_image:
        raise InputError(rgb_dir / f"{without_image[0]}.png", f"missing (the image of {poses[without_image[0]].name})")
    return [(images[stem], poses[stem]) for stem in sorted(images)]


def load_srn_object(folder: Path, up: str, scale: float, white_threshold: int) -> ObjectData:
    """All views of one SRN object in our world, intrinsics rescaled to the stored images."""
    intrinsics_path = folder / "intrinsics.txt"
    f, cx, cy, height, width = read_intrinsics(intrinsics_path)
    views: list[View] = []
    for image_path, pose_path in frame_pairs(folder):
        image = srn_rgba(image_path, white_threshold)
        check_same_size(image_path, image, views)
        views.append(View(image, to_category_frame(read_pose(pose_path) @ OPENCV_TO_OPENGL, up, scale)))
    h, w = views[0].image.shape[:2]
    factor = w / width
    if not np.isclose(h / height, factor, rtol=1e-3):
        raise InputError(
            intrinsics_path, f"refers to {width}x{height} images, but the images are {w}x{h} (another aspect ratio)"
        )
    return ObjectData(views, f * factor, cx * factor, cy * factor)


@dataclass
class ConvertSRN:
    """Convert SRN renders (ShapeNet cars/chairs: <obj>/rgb, <obj>/pose, <obj>/intrinsics.txt) into a category
    folder."""

    input: Path
    """SRN folder: one sub-folder per object (e.g. cars_train)."""
    output: Path
    """Category root to write (one nerf-synthetic folder per object + objects.json)."""
    category: str = "srn"
    """Category name stored in objects.json."""
    up: Literal["y", "z"] = "y"
    """Up axis of the input world; ShapeNet is Y-up, rotated here to our Z-up. "z" leaves it."""
    scale: float = 1.0
    """Factor on the camera translations; 1.0 as ShapeNet objects are normalised to about [-0.5, 0.5]^3, our box.
    Objects that stick out are reported with a scale that fits."""
    white_threshold: int = 4
    """RGB images: a pixel is background (alpha 0) when every channel is within this of 255."""
    test_every: int = 8
    """Views 0, n, 2n, ... of each object (in frame order) go to the test split."""
    val_every: int = 8
    """Of the other views, the 1st, (n+1)-th, ... go to the val split; the rest to train."""

    def main(self) -> None:
        """Convert every object folder of `input` into `output`."""
        check_options(self.scale, self.test_every, self.val_every)
        folders = object_folders(self.input)
        load = functools.partial(load_srn_object, up=self.up, scale=self.scale, white_threshold=self.white_threshold)
        ids = convert_category(
            folders, load, self.output, self.category, "srn", self.test_every, self.val_every, self.scale
        )
        CONSOLE.print(f"{len(ids)} of {len(folders)} objects written to {self.output}")
