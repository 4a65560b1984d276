"""The category dataparser on a tiny fixture, and its one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_object

from hypnerf_ns.data.dataparser import CategoryDataParserConfig
from hypnerf_ns.errors import HypnerfError, InputError


def parse(root: Path, split: str = "train"):
    return CategoryDataParserConfig(data=root).setup().get_dataparser_outputs(split=split)


def test_parses_objects_in_objects_json_order(tiny_category: Path) -> None:
    outputs = parse(tiny_category)
    assert outputs.metadata["object_ids"] == ["red", "blue"]
    assert outputs.metadata["object_names"] == ["Red square", "Blue square"]
    assert len(outputs.image_filenames) == 6
    assert outputs.cameras.metadata["object_index"][:, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert int(outputs.cameras.width[0]) == 8
    # focal length from camera_angle_x: 0.5 * W / tan(0.35)
    assert float(outputs.cameras.fx[0]) == pytest.approx(0.5 * 8 / 0.365028, rel=1e-4)
    assert len(parse(tiny_category, "val").image_filenames) == 2


def test_without_objects_json_uses_sorted_folders(tiny_category: Path) -> None:
    (tiny_category / "objects.json").unlink()
    assert parse(tiny_category).metadata["object_ids"] == ["blue", "red"]


def test_object_index_reaches_the_rays(tiny_category: Path) -> None:
    cameras = parse(tiny_category).cameras
    rays = cameras.generate_rays(camera_indices=4)
    assert (rays.metadata["object_index"] == 1).all()


def expect_error(root: Path, names: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        parse(root)
    message = str(caught.value)
    assert "\n" not in message
    assert names in message and problem in message, message


def test_missing_root(tmp_path: Path) -> None:
    expect_error(tmp_path / "nowhere", "nowhere", "no such folder")


def test_empty_root(tmp_path: Path) -> None:
    expect_error(tmp_path, str(tmp_path), "no objects")


def test_object_without_transforms(tiny_category: Path) -> None:
    (tiny_category / "blue" / "transforms_train.json").unlink()
    expect_error(tiny_category, "blue/transforms_train.json", "missing")


def test_missing_png(tiny_category: Path) -> None:
    (tiny_category / "red" / "train" / "r_1.png").unlink()
    expect_error(tiny_category, "red/train/r_1.png", "image missing")


def test_malformed_json(tiny_category: Path) -> None:
    (tiny_category / "blue" / "transforms_train.json").write_text('{"frames": [')
    expect_error(tiny_category, "blue/transforms_train.json", "malformed JSON")


def test_malformed_objects_json(tiny_category: Path) -> None:
    (tiny_category / "objects.json").write_text(json.dumps({"objects": "red"}))
    expect_error(tiny_category, "objects.json", "expected")


def test_objects_of_different_sizes(tiny_category: Path) -> None:
    write_object(tiny_category / "blue", {"train": 3}, size=16)
    expect_error(tiny_category, "blue/train/r_0.png", "one image size")


@pytest.mark.slow
def test_ns_train_reports_bad_data_in_one_line(tmp_path: Path) -> None:
    """Through the real CLI: exit status 1, the file named, no traceback."""
    (tmp_path / "chair").mkdir()
    (tmp_path / "chair" / "transforms_train.json").write_text("{not json")
    ns_train = Path(sys.executable).parent / "ns-train"
    result = subprocess.run(
        [
            str(ns_train), "hyp-nerf", "--data", str(tmp_path), "--vis", "tensorboard",
            "--output-dir", str(tmp_path / "out"),
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("hypnerf-ns: ") and "chair/transforms_train.json: malformed JSON" in last_line


def test_holdout_leaves_out_every_nth_object(tiny_category: Path) -> None:
    from hypnerf_ns.data.category import list_objects, split_holdout

    for k in range(4):
        write_object(tiny_category / f"extra{k}", {"train": 1, "val": 1, "test": 1})
    listing = json.loads((tiny_category / "objects.json").read_text())
    listing["objects"] += [{"id": f"extra{k}", "name": f"extra {k}"} for k in range(4)]
    (tiny_category / "objects.json").write_text(json.dumps(listing))
    _train, held = split_holdout(list_objects(tiny_category), 3)
    assert [o.id for o in held] == ["extra0", "extra3"]
    outputs = CategoryDataParserConfig(data=tiny_category, holdout_every=3).setup().get_dataparser_outputs("train")
    assert outputs.metadata["object_ids"] == ["red", "blue", "extra1", "extra2"]
    with pytest.raises(HypnerfError, match="holdout_every"):
        split_holdout(list_objects(tiny_category), 1)


def test_merged_roots_load_as_one_category_with_their_weights(tiny_category: Path, tmp_path: Path) -> None:
    """`hypnerf-ns data merge`: objects of several roots, no copies, weights per root; batches follow the weights."""
    from hypnerf_ns.cli import entrypoint
    from hypnerf_ns.data.datamanager import ObjectBatchPixelSampler, ObjectBatchPixelSamplerConfig

    other = tmp_path / "other"
    for k in range(3):
        write_object(other / f"green{k}", {"train": 2, "val": 1, "test": 1}, colour=(30, 200, 30))
    merged = tmp_path / "merged"
    entrypoint(["data", "merge", str(tiny_category), str(other), "--output", str(merged), "--weights", "4", "1"])
    assert sorted(p.name for p in merged.iterdir()) == ["objects.json"], "nothing is copied"
    outputs = CategoryDataParserConfig(data=merged).setup().get_dataparser_outputs("train")
    assert outputs.metadata["object_ids"] == ["red", "blue", "green0", "green1", "green2"]
    assert outputs.metadata["object_weights"] == [4.0, 4.0, 1.0, 1.0, 1.0]
    assert len(outputs.image_filenames) == 3 + 3 + 3 * 2 and all(p.is_file() for p in outputs.image_filenames)

    sampler = ObjectBatchPixelSampler(
        ObjectBatchPixelSamplerConfig(objects_per_batch=1),
        torch.tensor(outputs.metadata["object_index_of_image"]),
        object_weights=torch.tensor(outputs.metadata["object_weights"]),
        num_rays_per_batch=8,
    )
    torch.manual_seed(0)
    drawn = torch.cat([sampler.choose_objects(5) for _ in range(2000)])
    share = float((drawn < 2).float().mean())
    assert abs(share - 8 / 11) < 0.04, share  # two objects of weight 4 against three of weight 1

    with pytest.raises(InputError, match="'red' is also in"):
        entrypoint(["data", "merge", str(tiny_category), str(tiny_category), "--output", str(tmp_path / "twice")])
