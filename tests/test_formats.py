"""SRN and ABO converters on tiny fixtures written here in the published formats.

Each fixture view shows a red disc centred on the projection of the world origin (the object's
centre) and a blue disc on the projection of a point above it (along the input's up axis), drawn
with the input format's own camera convention and intrinsics. After conversion, both points are
projected through the converted cameras (OpenGL, as nerfstudio reads them) and must land on the
discs: a wrong axis flip, up rotation, scale or intrinsics rescaling moves them by pixels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hypnerf_ns.data.abo import ConvertABO
from hypnerf_ns.data.dataparser import CategoryDataParserConfig
from hypnerf_ns.data.srn import ConvertSRN
from hypnerf_ns.errors import InputError

SIZE = 24  # stored image side, pixels
FOCAL, CX, CY = 30.0, 12.5, 11.5  # intrinsics of the stored images (off-centre, cx != cy)
RED, BLUE = (200, 30, 30), (30, 30, 200)
OBJECT_RADIUS, MARKER_RADIUS = 2.5, 1.5  # disc radii, pixels
VIEWS = 10
N_TEST, N_VAL, N_TRAIN = 2, 1, 7  # default rule on 10 views: test 0 and 8; val the first of the rest

SRN_DISTANCE, SRN_MARKER = 1.3, 0.4  # camera distance, height of the blue point (SRN units, Y up)
ABO_DISTANCE, ABO_MARKER = 4.0, 1.2  # the same for ABO (Z up)


# ---------------------------------------------------------------- geometry


def eye_position(k: int, distance: float, up: str) -> np.ndarray:
    """[3] position of camera k on a sphere around the origin, above the horizon of the `up` axis."""
    azimuth, elevation = 0.7 * k, 0.2 + 0.03 * k
    horizontal, height = distance * math.cos(elevation), distance * math.sin(elevation)
    if up == "y":
        return np.array([horizontal * math.sin(azimuth), height, horizontal * math.cos(azimuth)])
    return np.array([horizontal * math.cos(azimuth), horizontal * math.sin(azimuth), height])


def look_at_opencv(eye: np.ndarray, up: np.ndarray) -> np.ndarray:
    """[4, 4] camera-to-world looking at the origin, OpenCV axes: x right, y down, z forward."""
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(forward, right), forward, eye
    return pose


def project_opencv(pose: np.ndarray, point: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """[2] pixel (u right, v down) of a world point seen by an OpenCV camera-to-world."""
    x, y, z = pose[:3, :3].T @ (point - pose[:3, 3])
    return np.array([cx + focal * x / z, cy + focal * y / z])


def project_opengl(pose: np.ndarray, point: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """[2] pixel of a world point seen by an OpenGL camera-to-world (x right, y up, looking down -z)."""
    x, y, z = pose[:3, :3].T @ (point - pose[:3, 3])
    assert z < 0, "the point is behind the camera"
    return np.array([cx + focal * x / -z, cy - focal * y / -z])


def pixel_distance(centre: np.ndarray) -> np.ndarray:
    """[SIZE, SIZE] distance of each pixel centre from a pixel position (u, v)."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return np.hypot(cols - centre[0], rows - centre[1])


def draw(centre: np.ndarray, marker: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """[SIZE, SIZE, 3] uint8: the red object disc and the blue marker disc on a background."""
    image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    image[:] = background
    image[pixel_distance(centre) <= OBJECT_RADIUS] = RED
    image[pixel_distance(marker) <= MARKER_RADIUS] = BLUE
    return image


def centroid(mask: np.ndarray) -> np.ndarray:
    """[2] mean pixel-centre position (u, v) of a boolean [H, W] mask."""
    rows, cols = np.nonzero(mask)
    assert rows.size, "colour not found in the image"
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5])


# ---------------------------------------------------------------- fixtures in the published formats


def write_srn_object(folder: Path, rgba: bool = False) -> list[np.ndarray]:
    """An SRN object: intrinsics given at 4x the image size, OpenCV poses in a Y-up world; returns the eyes."""
    (folder / "rgb").mkdir(parents=True)
    (folder / "pose").mkdir()
    (folder / "intrinsics.txt").write_text(f"{4 * FOCAL} {4 * CX} {4 * CY} 0.\n0. 0. 0.\n1.\n{4 * SIZE} {4 * SIZE}\n")
    eyes = []
    for k in range(VIEWS):
        eye = eye_position(k, SRN_DISTANCE, "y")
        pose = look_at_opencv(eye, np.array([0.0, 1.0, 0.0]))
        centre = project_opencv(pose, np.zeros(3), FOCAL, CX, CY)
        marker = project_opencv(pose, np.array([0.0, SRN_MARKER, 0.0]), FOCAL, CX, CY)
        image = draw(centre, marker, (255, 255, 255))
        if rgba:
            alpha = np.where((image == 255).all(axis=-1), 0, 255).astype(np.uint8)
            Image.fromarray(np.dstack([image, alpha]), "RGBA").save(folder / "rgb" / f"{k:06d}.png")
        else:
            Image.fromarray(image).save(folder / "rgb" / f"{k:06d}.png")
        np.savetxt(folder / "pose" / f"{k:06d}.txt", pose.reshape(1, 16))
        eyes.append(eye)
    return eyes


def write_abo_object(folder: Path) -> None:
    """An ABO object: metadata.json (flat K and pose), JPEG renders on grey, JPEG masks; OpenGL poses, Z up."""
    (folder / "render" / "0").mkdir(parents=True)
    (folder / "segmentation").mkdir()
    views = []
    for k in range(VIEWS):
        pose = look_at_opencv(eye_position(k, ABO_DISTANCE, "z"), np.array([0.0, 0.0, 1.0]))
        centre = project_opencv(pose, np.zeros(3), FOCAL, CX, CY)
        marker = project_opencv(pose, np.array([0.0, 0.0, ABO_MARKER]), FOCAL, CX, CY)
        image = draw(centre, marker, (128, 128, 128))
        mask = np.where((image == 128).all(axis=-1), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / "render" / "0" / f"render_{k}.jpg", quality=100, subsampling=0)
        Image.fromarray(mask, "L").save(folder / "segmentation" / f"segmentation_{k}.jpg", quality=100)
        opengl = pose @ np.diag([1.0, -1.0, -1.0, 1.0])
        views.append({"K": [FOCAL, 0.0, CX, 0.0, FOCAL, CY, 0.0, 0.0, 1.0], "pose": opengl.reshape(16).tolist()})
    (folder / "metadata.json").write_text(json.dumps({"views": views, "envs": ["photo_studio_01"]}))


@pytest.fixture
def srn_input(tmp_path: Path) -> Path:
    """Two SRN objects of 10 views each."""
    root = tmp_path / "srn_cars"
    for name in ("car_a", "car_b"):
        write_srn_object(root / name)
    return root


@pytest.fixture
def abo_input(tmp_path: Path) -> Path:
    """Two ABO objects of 10 views each (plus the benchmark's split file, which is not an object)."""
    root = tmp_path / "abo"
    for name in ("B07B4GVN1Q", "B07HMV6RXX"):
        write_abo_object(root / name)
    (root / "train_test_split.csv").write_text("MODEL,SPLIT,N_SCENES,SCENES\nB07B4GVN1Q,TRAIN,1,0\n")
    return root


# ---------------------------------------------------------------- checks


def parse(root: Path, split: str):
    return CategoryDataParserConfig(data=root).setup().get_dataparser_outputs(split)


def split_sizes(root: Path) -> dict[str, int]:
    return {split: len(parse(root, split).image_filenames) for split in ("train", "val", "test")}


def check_views(root: Path, marker: np.ndarray) -> int:
    """Every converted view: the origin and `marker` ([3], our world) project onto the red and blue
    discs, alpha is 255 on the object and 0 on the background. Returns the number of views checked."""
    checked = 0
    for split in ("train", "val", "test"):
        outputs = parse(root, split)
        cameras = outputs.cameras
        for i, path in enumerate(outputs.image_filenames):
            image = np.asarray(Image.open(path))
            assert image.shape == (SIZE, SIZE, 4)
            pose = np.vstack([cameras.camera_to_worlds[i].numpy().astype(np.float64), [0, 0, 0, 1]])
            focal, cx, cy = float(cameras.fx[i]), float(cameras.cx[i]), float(cameras.cy[i])
            centre = project_opengl(pose, np.zeros(3), focal, cx, cy)
            top = project_opengl(pose, marker, focal, cx, cy)
            red = (image[..., 0] > 150) & (image[..., 2] < 100)
            blue = (image[..., 2] > 150) & (image[..., 0] < 100)
            assert np.abs(centroid(red) - centre).max() < 0.5, (path, centroid(red), centre)
            assert np.abs(centroid(blue) - top).max() < 0.5, (path, centroid(blue), top)
            alpha = image[..., 3]
            inside = (pixel_distance(centre) < OBJECT_RADIUS - 1) | (pixel_distance(top) < MARKER_RADIUS - 0.6)
            outside = (pixel_distance(centre) > OBJECT_RADIUS + 1.5) & (pixel_distance(top) > MARKER_RADIUS + 1.5)
            assert inside.any() and (alpha[inside] == 255).all(), path
            assert (alpha[outside] == 0).all(), path
            checked += 1
    return checked


# ---------------------------------------------------------------- SRN


def test_srn_defaults() -> None:
    command = ConvertSRN(input=Path("in"), output=Path("out"))
    assert (command.category, command.up, command.scale, command.test_every, command.val_every) == (
        "srn",
        "y",
        1.0,
        8,
        8,
    )


def test_srn_converts_cameras_images_and_splits(srn_input: Path, tmp_path: Path) -> None:
    root = tmp_path / "category"
    ConvertSRN(input=srn_input, output=root).main()

    index = json.loads((root / "objects.json").read_text())
    assert index["category"] == "srn"
    assert index["objects"] == [
        {"id": "car_a", "name": "car_a", "source": "srn"},
        {"id": "car_b", "name": "car_b", "source": "srn"},
    ]
    assert parse(root, "train").metadata["object_ids"] == ["car_a", "car_b"]
    assert split_sizes(root) == {"train": 2 * N_TRAIN, "val": 2 * N_VAL, "test": 2 * N_TEST}
    test = parse(root, "test")
    # intrinsics given for 96 px images, rescaled to the 24 px ones
    assert (float(test.cameras.fx[0]), float(test.cameras.cx[0]), float(test.cameras.cy[0])) == pytest.approx(
        (FOCAL, CX, CY)
    )
    # Y-up world rotated to Z-up: the blue point at +Y lands at +Z
    assert check_views(root, np.array([0.0, 0.0, SRN_MARKER])) == 2 * VIEWS


def test_srn_up_axis_goes_to_z(srn_input: Path, tmp_path: Path) -> None:
    root = tmp_path / "category"
    ConvertSRN(input=srn_input, output=root).main()
    cameras = parse(root, "test").cameras  # car_a frames 0 and 8, then car_b frames 0 and 8
    for i, frame in enumerate((0, 8, 0, 8)):
        eye = eye_position(frame, SRN_DISTANCE, "y")
        position = cameras.camera_to_worlds[i, :, 3].numpy()
        # the rotation takes +Y to +Z (heights are kept) and is proper: (x, y, z) -> (x, -z, y)
        assert position == pytest.approx([eye[0], -eye[2], eye[1]], abs=1e-5)
        camera_up = cameras.camera_to_worlds[i, :, 1].numpy()
        assert camera_up[2] > 0.8  # the cameras are upright in the Z-up world


def test_srn_scale_and_up_options(srn_input: Path, tmp_path: Path) -> None:
    root = tmp_path / "category"
    ConvertSRN(input=srn_input, output=root, scale=0.5, up="z").main()
    cameras = parse(root, "test").cameras
    assert float(cameras.camera_to_worlds[0, :, 3].norm()) == pytest.approx(0.5 * SRN_DISTANCE, rel=1e-5)
    # no rotation: the blue point stays on +Y, at half its height
    assert check_views(root, np.array([0.0, 0.5 * SRN_MARKER, 0.0])) == 2 * VIEWS


def test_srn_keeps_an_existing_alpha_channel(tmp_path: Path) -> None:
    write_srn_object(tmp_path / "srn" / "car", rgba=True)
    rgba = np.array(Image.open(tmp_path / "srn" / "car" / "rgb" / "000001.png"))
    rgba[0, 0] = (255, 255, 255, 77)  # a white, partly transparent pixel keeps its alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "srn" / "car" / "rgb" / "000001.png")
    ConvertSRN(input=tmp_path / "srn", output=tmp_path / "category").main()
    converted = np.asarray(
        Image.open(tmp_path / "category" / "car" / "train" / "r_0.png")
    )  # frame 1 is val: train r_0 is frame 2
    original = np.asarray(Image.open(tmp_path / "srn" / "car" / "rgb" / "000002.png"))
    assert (converted[..., 3] == original[..., 3]).all()
    assert np.asarray(Image.open(tmp_path / "category" / "car" / "val" / "r_0.png"))[0, 0, 3] == 77


def test_srn_skips_an_object_without_a_pose(srn_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (srn_input / "car_b" / "pose" / "000003.txt").unlink()
    root = tmp_path / "category"
    ConvertSRN(input=srn_input, output=root).main()
    lines = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(lines) == 1, lines
    assert (
        "skipping car_b" in lines[0]
        and str(Path("car_b") / "pose" / "000003.txt") in lines[0]
        and "missing" in lines[0]
    )
    assert [o["id"] for o in json.loads((root / "objects.json").read_text())["objects"]] == ["car_a"]
    assert not (root / "car_b").exists()
    assert split_sizes(root) == {"train": N_TRAIN, "val": N_VAL, "test": N_TEST}


def test_srn_image_without_pose_partner_is_named(
    srn_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (srn_input / "car_a" / "rgb" / "000004.png").unlink()
    ConvertSRN(input=srn_input, output=tmp_path / "category").main()
    out = capsys.readouterr().out
    assert str(Path("car_a") / "rgb" / "000004.png") in out and "000004.txt" in out


def test_missing_or_empty_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        ConvertSRN(input=tmp_path / "nowhere", output=tmp_path / "out").main()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no object folders"):
        ConvertABO(input=tmp_path / "empty", output=tmp_path / "out").main()


def test_all_objects_broken_is_an_input_error(srn_input: Path, tmp_path: Path) -> None:
    for name in ("car_a", "car_b"):
        (srn_input / name / "intrinsics.txt").write_text("not numbers\n")
    with pytest.raises(InputError, match="no object could be converted"):
        ConvertSRN(input=srn_input, output=tmp_path / "category").main()


# ---------------------------------------------------------------- ABO


def test_abo_defaults() -> None:
    command = ConvertABO(input=Path("in"), output=Path("out"))
    assert (command.category, command.up, command.scale, command.test_every, command.val_every) == (
        "abo",
        "z",
        0.33,
        8,
        8,
    )


def test_abo_converts_cameras_masks_and_splits(abo_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "category"
    ConvertABO(input=abo_input, output=root).main()
    assert "warning" not in capsys.readouterr().out  # at the default scale the object fits the box

    index = json.loads((root / "objects.json").read_text())
    assert [(o["id"], o["name"], o["source"]) for o in index["objects"]] == [
        ("B07B4GVN1Q", "B07B4GVN1Q", "abo"),
        ("B07HMV6RXX", "B07HMV6RXX", "abo"),
    ]
    assert parse(root, "test").metadata["object_ids"] == ["B07B4GVN1Q", "B07HMV6RXX"]
    assert split_sizes(root) == {"train": 2 * N_TRAIN, "val": 2 * N_VAL, "test": 2 * N_TEST}
    cameras = parse(root, "train").cameras
    assert float(cameras.camera_to_worlds[0, :, 3].norm()) == pytest.approx(0.33 * ABO_DISTANCE, rel=1e-5)
    # Z-up already: the blue point stays on +Z, scaled like the cameras
    assert check_views(root, np.array([0.0, 0.0, 0.33 * ABO_MARKER])) == 2 * VIEWS


def test_abo_ids_file_selects_objects(abo_input: Path, tmp_path: Path) -> None:
    (tmp_path / "chairs.txt").write_text("# chairs\nB07HMV6RXX\n")
    ConvertABO(input=abo_input, output=tmp_path / "category", ids=tmp_path / "chairs.txt").main()
    assert parse(tmp_path / "category", "train").metadata["object_ids"] == ["B07HMV6RXX"]


def test_abo_skips_an_object_without_a_mask(abo_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (abo_input / "B07B4GVN1Q" / "segmentation" / "segmentation_4.jpg").unlink()
    ConvertABO(input=abo_input, output=tmp_path / "category").main()
    lines = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(lines) == 1 and str(Path("B07B4GVN1Q") / "segmentation" / "segmentation_4.jpg") in lines[0], lines
    assert parse(tmp_path / "category", "train").metadata["object_ids"] == ["B07HMV6RXX"]


def test_abo_malformed_metadata_is_named(abo_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (abo_input / "B07HMV6RXX" / "metadata.json").write_text(json.dumps({"views": [{"pose": [1, 2, 3]}]}))
    ConvertABO(input=abo_input, output=tmp_path / "category").main()
    line = next(line for line in capsys.readouterr().out.splitlines() if "warning" in line)
    assert str(Path("B07HMV6RXX") / "metadata.json") in line and '"K"' in line


def test_object_larger_than_the_box_is_reported(abo_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ConvertABO(input=abo_input, output=tmp_path / "category", scale=3.0).main()
    lines = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(lines) == 2 and all("outside [-0.5, 0.5]^3" in line and "try --scale" in line for line in lines), lines
    suggested = float(lines[0].rsplit("--scale ", 1)[1])
    assert 0.1 < suggested < 0.5
    ConvertABO(input=abo_input, output=tmp_path / "refit", scale=suggested).main()
    assert "warning" not in capsys.readouterr().out
