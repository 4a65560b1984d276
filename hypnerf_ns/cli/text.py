"""`hypnerf-ns text`: a prompt -> a latent file and a turntable video (tasks.text, optional CLIP guidance)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro
from rich.console import Console

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.cameras import category_cameras
from hypnerf_ns.lib.prior import load_prior, training_codes
from hypnerf_ns.nerf.hypernetwork import Codes
from hypnerf_ns.nerf.latent_files import Latent
from hypnerf_ns.nerf.text_mapping import embed
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.clip_guidance import LocalCLIP, clip_optimise, guidance_cameras
from hypnerf_ns.tasks.text import rank_objects, text_mapping_for
from hypnerf_ns.tasks.videos import TurntableOptions, write_turntable

CONSOLE = Console()


@dataclass
class Text:
    """Generate an object from a text prompt: a latent file, a turntable video, the nearest training objects."""

    prompt: tyro.conf.Positional[str]
    """What to generate, e.g. "a green wooden stool"."""
    load_config: Path
    """config.yml of a trained hyp-nerf."""
    output: Path | None = None
    """Folder for latent.pt, turntable.mp4 and text.json (default: text/<prompt> next to --load-config)."""
    colour: str | None = None
    """Take the colour from this phrase instead of the prompt (e.g. "red"); the shape stays the prompt's."""
    retrain: bool = False
    """Train the text mapping again even if <run>/text.pt exists."""
    clip: Path | None = None
    """Optional: a local CLIP folder (Hugging Face layout); the codes are then optimised so that renders match the
    prompt under CLIP."""
    clip_steps: int = 50
    clip_views: int = 4
    """Renders per CLIP step, around the object."""
    clip_resolution: int = 64
    video: tyro.conf.OmitArgPrefixes[TurntableOptions] = field(default_factory=lambda: TurntableOptions(frames=24))

    def main(self) -> None:
        prior = load_prior(self.load_config)
        model = prior.model
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.prompt} {self.colour or ''}".lower()).strip("-")[:60] or "prompt"
        output = self.output if self.output is not None else self.load_config.parent / "text" / slug
        mapping = text_mapping_for(prior, self.retrain)
        shape_text = embed([self.prompt])
        color_text = shape_text if self.colour is None else embed([self.colour])
        with torch.no_grad():
            codes = mapping(shape_text, color_text)
        nearest = rank_objects(mapping, training_codes(model), shape_text, color_text)[0, :3]
        codes = Codes(codes.shape.to(model.device), codes.color.to(model.device))
        summary = {
            "prompt": self.prompt,
            "colour": self.colour,
            "nearest_training_objects": [model.object_ids[i] for i in nearest.tolist()],
        }
        if self.clip is not None:
            clip = LocalCLIP.load(self.clip)
            reference, radius = category_cameras(prior, self.clip_resolution)
            with progress_bar() as bar:
                task = bar.add_task(f"CLIP guidance ({self.clip_views} renders per step)", total=self.clip_steps)
                cameras = guidance_cameras(reference, radius, self.clip_views)
                codes, losses = clip_optimise(
                    model,
                    clip,
                    self.prompt,
                    codes,
                    cameras,
                    self.clip_steps,
                    on_step=lambda step, loss: bar.update(task, completed=step),
                )
            summary["clip"] = {
                "folder": str(self.clip),
                "steps": self.clip_steps,
                "first_loss": losses[0],
                "last_loss": losses[-1],
            }
        Latent(
            codes,
            model.hypernetwork.fingerprint(),
            str(self.load_config),
            slug,
            {"text": self.prompt, "colour": self.colour},
        ).save(output / "latent.pt")
        with torch.no_grad():
            params = model.hypernetwork(codes)
        write_turntable(prior, lambda k: params, self.video, output / "turntable.mp4", f"turntable of {slug}")
        write_text_atomic(output / "text.json", json.dumps(summary, indent=1) + "\n")
        CONSOLE.print(
            f"wrote {output}: latent.pt, turntable.mp4, text.json; "
            f"nearest training objects: {', '.join(summary['nearest_training_objects'])}",
            soft_wrap=True,
        )
