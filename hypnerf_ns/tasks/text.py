"""Text to NeRF, offline: train the prior's text mapping (`nerf.text_mapping`) on its captions.

The mapping's two heads are trained on the category's captions (captions.py) against the
learnt codebook means, both standardised per dimension. Loss per head: squared error to the
captioned object's code plus a contrastive term, the cross-entropy of the object among all
objects with logits minus the squared distance to each object's code, so that the nearest code
is the captioned object's even where captions are ambiguous. A caption trains only the heads it
describes (shape-only and colour-only captions), which lets a query take its shape from one
phrase and its colour from another.

The trained mapping is saved as `<run>/text.pt` (weights_only, tied to the prior's fingerprint)
and recorded in the run's config.yml (`pipeline.model.text_mapping`), where the viewer's text
box finds it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from rich.console import Console
from torch import Tensor

from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.lib.prior import Prior, training_codes
from hypnerf_ns.nerf.hypernetwork import Codes
from hypnerf_ns.nerf.text_mapping import TextToCodes, embed, load_text_mapping, save_text_mapping
from hypnerf_ns.tasks.captions import ObjectCaptions, category_captions

CONSOLE = Console()
FILE_NAME = "text.pt"
"""The run's text mapping, next to its config.yml."""


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
    def of(captions: Sequence[ObjectCaptions], object_ids: list[str]) -> CaptionSet:
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


def standardise(codes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
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
) -> tuple[TextToCodes, dict[str, float]]:
    """A TextToCodes trained on `captions` against the codebook means `codes` [O, D]; and a report."""
    shape_targets, shape_mean, shape_std = standardise(codes.shape.detach().cpu())
    color_targets, color_mean, color_std = standardise(codes.color.detach().cpu())
    with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's random state untouched
        torch.manual_seed(seed)
        mapping = TextToCodes(captions.embeddings.shape[1], shape_targets.shape[1], color_targets.shape[1])
    mapping.set_statistics((shape_mean, shape_std), (color_mean, color_std))
    optimizer = torch.optim.AdamW(mapping.parameters(), lr=lr, weight_decay=1e-2)
    start = time.perf_counter()
    first = None
    for _ in range(steps):
        shape, color = mapping.standardised(captions.embeddings, captions.embeddings)
        s, c = captions.trains_shape, captions.trains_color
        loss = head_loss(shape[s], shape_targets, captions.objects[s], temperature) + head_loss(
            color[c], color_targets, captions.objects[c], temperature
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = float(loss.detach()) if first is None else first
    report = {
        "captions": len(captions.objects),
        "steps": steps,
        "first_loss": first,
        "last_loss": float(loss.detach()),
        "seconds": time.perf_counter() - start,
    }
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


def held_out_retrieval(
    mapping: TextToCodes, codes: Codes, captions: ObjectCaptions, object_ids: list[str]
) -> dict[str, dict[str, float]]:
    """How often an object's held-out captions rank it first / among the first five of the
    objects with codes `codes` [O, D] (the `text` task of `hypnerf-ns eval`)."""
    if not captions.held_out:
        raise HypnerfError(
            f"object {captions.object_id} has no held-out captions (its captions come from objects.json)"
        )
    embeddings = embed(captions.held_out)
    rank = (
        (rank_objects(mapping, codes, embeddings, embeddings) == object_ids.index(captions.object_id))
        .float()
        .argmax(dim=1)
    )
    return {
        "text": {
            "top1": float((rank == 0).float().mean()),
            "top5": float((rank < 5).float().mean()),
            "mean_rank": float(rank.float().mean() + 1),
        }
    }


def record_in_config(config_path: Path, mapping_path: Path) -> None:
    """Set `pipeline.model.text_mapping` in a run's config.yml (atomically), for the viewer."""
    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    config.pipeline.model.text_mapping = mapping_path.resolve()
    write_text_atomic(config_path, yaml.dump(config))


def text_mapping_for(prior: Prior, retrain: bool = False) -> TextToCodes:
    """The run's text mapping: loaded from `<run>/text.pt`, or (first use, or `retrain`) trained on
    the captions of its training objects, saved there and recorded in its config.yml."""
    path = prior.run_file(FILE_NAME)
    if path.is_file() and not retrain:
        return load_text_mapping(path, prior.model.hypernetwork)
    model = prior.model
    with CONSOLE.status("captions of the training objects (their views) and their text embeddings"):
        captions = category_captions(prior.data, model.object_ids)
        caption_set = CaptionSet.of(captions, model.object_ids)
    with CONSOLE.status(f"training the text mapping on {len(caption_set.objects)} captions"):
        mapping, report = fit_text_to_codes(caption_set, training_codes(model))
    save_text_mapping(
        mapping,
        path,
        model.hypernetwork,
        {item.object_id: [c.text for c in item.training] for item in captions},
        report,
    )
    record_in_config(prior.config_path, path)
    CONSOLE.print(
        f"wrote {path} ({report['captions']} captions, loss {report['first_loss']:.2f} -> "
        f"{report['last_loss']:.2f}, {report['seconds']:.0f} s)",
        soft_wrap=True,
    )
    return mapping
