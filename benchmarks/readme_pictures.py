"""The README's pictures, made by the project's own commands from a trained prior.

    python benchmarks/readme_pictures.py --load-config RUN/config.yml --data CHAIRS \\
        --objects ID1 ID2 ID3 ID4 --output docs/images

For each held-out object (one the prior never saw), `hypnerf-ns invert --views 0 --mirror
--refine-steps 400` fits a NeRF to its first training view and renders its test views; the row
shows the input view, then for three test views the NeRF's render beside the ground truth.
Then `hypnerf-ns render sheet --samples` (new chairs sampled from the prior) and `hypnerf-ns
render turntable --finetuned` (the first object's one-view NeRF once around, an animated WebP).
Writes one-view.png, samples.png and turntable.webp to --output, and the commands with each
object's test-view PSNR / SSIM to --report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from PIL import Image

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.data.preview import save_png, tile
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.views import on_white, read_rgba

NOVEL_VIEWS = (1, 3, 6)
"""Test views shown per object (of the category's 8), spread around the object."""


@dataclass
class Args:
    load_config: Path
    data: Path
    """The category folder the held-out objects are in (one sub-folder per object)."""
    objects: tuple[str, ...]
    """Held-out object ids (sub-folders of --data that the prior never saw)."""
    output: Path = Path("docs/images")
    report: Path = Path("benchmarks/results/readme-pictures.json")
    work: Path = Path("outputs/readme-pictures")
    """Where the inversions are written."""
    refine_steps: int = 400
    samples: int = 16


def view_on_white(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A view read as the evaluation reads its ground truth (`read_rgba`, `on_white`) at the renders'
    `size` (width, height): uint8 [H, W, 3]."""
    rgb = on_white(read_rgba(path, (size[1], size[0])))
    return (rgb.numpy() * 255).round().astype(np.uint8)


def one_view_row(args: Args, object_id: str) -> tuple[list[np.ndarray], list[str], dict]:
    """Invert `object_id` from its view 0; its row of images with labels, and its metrics."""
    folder, work = args.data / object_id, args.work / object_id
    command = [
        "invert", "--load-config", str(args.load_config), "--data", str(folder), "--views", "0", "--mirror",
        "--refine-steps", str(args.refine_steps), "--output", str(work),
    ]  # fmt: skip
    entrypoint(command)
    metrics = json.loads((work / "metrics.json").read_text())
    with Image.open(work / "renders" / "test_0.png") as first:
        size = first.size
    images, labels = [view_on_white(folder / "train" / "r_0.png", size)], ["input"]
    for k in NOVEL_VIEWS:
        with Image.open(work / "renders" / f"test_{k}.png") as render:
            images.append(np.asarray(render.convert("RGB")))
        images.append(view_on_white(folder / "test" / f"r_{k}.png", size))
        labels += ["ours", "truth"]
    return images, labels, {"object": object_id, "command": "hypnerf-ns " + " ".join(command), **metrics}


def main(args: Args) -> None:
    args.output.mkdir(parents=True, exist_ok=True)
    images, labels, rows = [], [], []
    for object_id in args.objects:
        row_images, row_labels, metrics = one_view_row(args, object_id)
        images += row_images
        labels += row_labels
        rows.append(metrics)
    save_png(tile(images, 1 + 2 * len(NOVEL_VIEWS), labels), args.output / "one-view.png")

    sheet = ["render", "sheet", "--load-config", str(args.load_config), "--samples", str(args.samples)]
    sheet += ["--columns", "8", "--resolution", "96", "--output", str(args.output / "samples.png")]
    entrypoint(sheet)
    turntable = ["render", "turntable", "--load-config", str(args.load_config)]
    turntable += ["--finetuned", str(args.work / args.objects[0] / "nerf.pt"), "--frames", "36", "--fps", "12"]
    turntable += ["--resolution", "128", "--output", str(args.output / "turntable.webp")]
    entrypoint(turntable)
    report = {
        "objects": rows,
        "mean_test_psnr": sum(row["test_psnr"] for row in rows) / len(rows),
        "mean_test_ssim": sum(row["test_ssim"] for row in rows) / len(rows),
        "commands": ["hypnerf-ns " + " ".join(sheet), "hypnerf-ns " + " ".join(turntable)],
    }
    write_text_atomic(args.report, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}: mean test-view PSNR {report['mean_test_psnr']:.2f} dB from one view")


if __name__ == "__main__":
    main(tyro.cli(Args))
