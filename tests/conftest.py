"""Shared fixtures: tiny categories the tests make themselves (squares, box chairs), and a trained prior."""

from __future__ import annotations

import copy
import json
import math
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def camera_to_world(azimuth: float, elevation: float, radius: float = 1.9) -> list[list[float]]:
    """OpenGL camera-to-world looking at the origin from a sphere, Z up."""
    eye = radius * np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -forward, eye
    return pose.tolist()


def write_object(folder: Path, views: dict, size: int = 8, colour: Sequence[int] = (200, 30, 30)) -> None:
    """A nerf-synthetic object folder with `views[split]` RGBA views of a coloured square."""
    for split, count in views.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for k in range(count):
            image = np.zeros((size, size, 4), dtype=np.uint8)
            image[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (*colour, 255)
            Image.fromarray(image).save(folder / split / f"r_{k}.png")
            frames.append({"file_path": f"./{split}/r_{k}", "transform_matrix": camera_to_world(k * 1.3, 0.3)})
        (folder / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": frames}))


@pytest.fixture
def tiny_category(tmp_path: Path) -> Path:
    """Two synthetic objects, 3 train / 1 val / 1 test views of 8x8 px, with objects.json."""
    root = tmp_path / "category"
    write_object(root / "red", {"train": 3, "val": 1, "test": 1}, colour=(200, 30, 30))
    write_object(root / "blue", {"train": 3, "val": 1, "test": 1}, colour=(30, 30, 200))
    objects = {"objects": [{"id": "red", "name": "Red square"}, {"id": "blue", "name": "Blue square"}]}
    (root / "objects.json").write_text(json.dumps(objects))
    return root


CHAIR_DESIGNS = {
    # name: (seat height, seat depth, seat width, back height (0: none), arm height (0: none), leg width, RGB)
    "side-chair": (0.45, 0.7, 0.7, 0.55, 0.0, 0.07, (200, 40, 40)),
    "bench": (0.5, 0.6, 1.0, 0.0, 0.0, 0.12, (40, 70, 210)),
    "armchair": (0.3, 0.9, 0.9, 0.3, 0.25, 0.12, (40, 170, 60)),
    "tall-chair": (0.4, 0.6, 0.6, 0.8, 0.0, 0.05, (220, 190, 40)),
}
"""Box chairs the tests make and photograph with the project's own renderer (`data meshes`): no
data from outside the repository. The first three are the training category; the last is unseen."""


def box_chair(design: str):
    """A chair of boxes (Z up): seat (depth along x, width along y), four legs, optional back and arms, one colour."""
    import trimesh

    seat_height, depth, width, back, arms, leg, colour = CHAIR_DESIGNS[design]
    at = trimesh.transformations.translation_matrix
    parts = [trimesh.creation.box(extents=(depth, width, 0.08), transform=at((0, 0, seat_height)))]
    for x in (-1, 1):
        for y in (-1, 1):
            parts.append(
                trimesh.creation.box(
                    extents=(leg, leg, seat_height),
                    transform=at((x * (depth - leg) / 2, y * (width - leg) / 2, seat_height / 2)),
                )
            )
    if back:
        parts.append(
            trimesh.creation.box(
                extents=(0.06, width, back), transform=at((-(depth - 0.06) / 2, 0, seat_height + back / 2))
            )
        )
    if arms:
        for y in (-1, 1):
            parts.append(
                trimesh.creation.box(
                    extents=(depth, 0.06, 0.06), transform=at((0, y * (width - 0.06) / 2, seat_height + arms))
                )
            )
    chair = trimesh.util.concatenate(parts)
    chair.visual.face_colors = (*colour, 255)
    return chair


def make_box_chairs(root: Path, designs: Sequence[str], resolution: int = 128, views=(40, 4, 8)) -> Path:
    """A category of box chairs photographed by the project's own renderer (`data meshes`)."""
    from hypnerf_ns.data.meshes import RenderOptions, find_meshes, render_category

    meshes = root.parent / f"{root.name}-meshes"
    meshes.mkdir(parents=True, exist_ok=True)
    for design in designs:
        box_chair(design).export(meshes / f"{design}.glb")
    render_category(find_meshes(meshes), root, "chair", RenderOptions(resolution=resolution, views=views, seed=0))
    return root


@pytest.fixture(scope="session")
def two_box_chairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two box chairs, 8 train / 1 val / 2 test views of 32x32 px."""
    return make_box_chairs(
        tmp_path_factory.mktemp("two_chairs") / "chairs", ["side-chair", "bench"], resolution=32, views=(8, 1, 2)
    )


@pytest.fixture(scope="session")
def three_chairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three box chairs (side chair, bench, armchair), 40 train / 4 val / 8 test views of 128x128 px."""
    return make_box_chairs(tmp_path_factory.mktemp("three_chairs") / "chairs", list(CHAIR_DESIGNS)[:3])


@pytest.fixture(scope="session")
def unseen_chair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a box chair the trained fixture never saw (a tall chair)."""
    root = make_box_chairs(tmp_path_factory.mktemp("unseen") / "chairs", list(CHAIR_DESIGNS)[3:])
    return root / list(CHAIR_DESIGNS)[3]


def small_config(data: Path, output_dir: Path, steps: int, scale: float = 0.25):
    """The hyp-nerf config shrunk for seconds-long CPU runs (32 px images, small batches)."""
    from method_configs import hyp_nerf

    config = copy.deepcopy(hyp_nerf.config)
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser.data = data
    config.pipeline.datamanager.camera_res_scale_factor = scale
    config.pipeline.datamanager.train_num_rays_per_batch = 1536
    config.pipeline.datamanager.pixel_sampler.objects_per_batch = 3
    config.pipeline.model.occupancy_warmup_steps = 20
    config.pipeline.model.occupancy_update_every = 4
    # All three objects are in every batch, so the codes can move faster than the category default.
    config.optimizers["codebook"]["optimizer"].lr = 0.2
    config.max_num_iterations = steps
    config.steps_per_save = steps
    config.vis = "tensorboard"
    config.output_dir = output_dir
    config.machine.seed = 0
    config.set_timestamp()
    return config


STEPS = 200


@pytest.fixture(scope="session")
def trained(three_chairs: Path, tmp_path_factory: pytest.TempPathFactory):
    """A hyp-nerf trained for STEPS steps on the three chairs: (config, trainer, losses)."""
    import torch

    from hypnerf_ns.method.training import train_step

    torch.manual_seed(0)
    config = small_config(three_chairs, tmp_path_factory.mktemp("run"), steps=STEPS)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    config.save_config()
    losses = [train_step(trainer, step).loss for step in range(STEPS)]
    trainer.save_checkpoint(STEPS - 1)
    return config, trainer, losses


@pytest.fixture
def shown_model(trained):
    """The trained model as the viewer and the tools see it (eval mode). Whatever a test changes on
    it (mode, viewer controls, what rays without an object show) is restored afterwards, so the
    tests that share `trained` stay independent of their order."""
    _, trainer, _ = trained
    model = trainer.pipeline.model
    controls = model.controls
    elements = [
        value for name, value in vars(controls).items() if name.startswith("viewer_") and hasattr(value, "value")
    ]
    saved_values = [element.value for element in elements]
    saved_controls = (controls._codes, controls._text_mapping_path)
    config = model.config
    saved_config = (
        config.active_object,
        config.active_latent,
        config.active_nerf,
        config.show_active_only,
        config.text_mapping,
    )
    was_training = model.training
    model.eval()
    yield model
    for element, value in zip(elements, saved_values, strict=True):
        element.value = value
    controls._codes, _ = saved_controls
    controls.use_text_mapping(saved_controls[1])
    config.active_object, config.active_latent, config.active_nerf, config.show_active_only, config.text_mapping = (
        saved_config
    )
    model.forget_display(0)
    model.train(was_training)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def viewer_port(trained):
    """`ns-viewer` (nerfstudio's own script) on the trained fixture, on a free localhost port."""
    config, _, _ = trained
    port = free_port()
    command = [
        sys.executable, "-m", "nerfstudio.scripts.viewer.run_viewer",
        "--load-config", str(config.get_base_dir() / "config.yml"),
        "--viewer.websocket-host", "127.0.0.1", "--viewer.websocket-port", str(port), "--viewer.image-format", "png",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield port
    finally:
        server.terminate()
        log = server.communicate(timeout=60)[0]
        print(log[-3000:])  # shown by pytest if the test failed
