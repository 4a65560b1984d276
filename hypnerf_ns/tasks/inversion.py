"""Fit the prior to posed images of an object: pick the best starting code, then optimise it.

The hypernetwork stays frozen; only the object's shape and colour codes move. Starting codes
are chosen by analysis-by-synthesis rather than a learnt image encoder: every training
object's code (and the mean code) renders a few thousand of the input pixels, and the code with
the lowest photometric error wins. That needs no extra network or weights (none can be
downloaded here) and is exact rather than amortised; its cost, one batched render of every
candidate, grows linearly with the number of training objects.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hypnerf_ns.lib.prior import mean_code, training_codes
from hypnerf_ns.lib.rendering import occupancy_for, render_candidates, render_nerf
from hypnerf_ns.lib.views import PosedPixels, on_white
from hypnerf_ns.method.model import HypNeRFModel
from hypnerf_ns.nerf.hypernetwork import TABLE_INIT, Codes, NeRFParams
from hypnerf_ns.nerf.rendering import blend_random_background

SEARCH_PIXELS = 4096
"""Input pixels (a random sample) on which `best_start` scores every candidate code: enough to rank
the candidates, few enough to render under every training object's NeRF in one batch."""

RAYS_PER_STEP = 1024
"""Random input pixels per `fit` step. Twice as many is within noise for `refine` (23.44 against
23.38 dB from three views of 6 unseen real chairs, N = 330 prior) in 1.4 times the time."""

OCCUPANCY_EVERY = 25
"""`fit` steps between rebuilds of the occupancy grid from the parameters being fitted: they move
little in that many steps (the grid is dilated by a cell), and a rebuild queries the density at
every cell."""

DECAY_FLOOR = 0.05
"""Share of the starting learning rate that `optimise`'s cosine decay ends at (its eta_min): the
last steps still polish the fit, at a twentieth of the starting rate."""

INVERT_LR = 0.02
"""Adam's learning rate of `invert` on the codes."""

PRIOR_WEIGHT = 1e-3
"""Weight of 0.5 |z|^2 in `invert`, which keeps the codes where the prior was trained (matters for one view)."""


def photometric_errors(model: HypNeRFModel, candidates: Codes, occupied: Tensor, pixels: PosedPixels) -> Tensor:
    """Mean squared error [B] of each of B candidate codes on the same pixels (white background)."""
    with torch.no_grad():
        rgb = render_candidates(model, model.hypernetwork(candidates), occupied, pixels.origins, pixels.directions)
    return ((rgb - on_white(pixels.rgba)[None]) ** 2).mean(dim=(1, 2))


def candidate_codes(model: HypNeRFModel) -> tuple[Codes, Tensor, list[str]]:
    """Every training object's code plus the mean of them all: codes [N+1], occupancy [N+1, G, G, G], names."""
    codes, mean = training_codes(model), mean_code(model)
    with torch.no_grad():
        mean_occupancy = occupancy_for(model, model.hypernetwork(mean))
    all_codes = Codes(torch.cat([codes.shape, mean.shape]), torch.cat([codes.color, mean.color]))
    occupied = torch.cat([model.occupancy.occupied(), mean_occupancy])
    return all_codes, occupied, [*model.object_ids, "mean code"]


def best_start(
    model: HypNeRFModel, pixels: PosedPixels, count: int = SEARCH_PIXELS, seed: int = 0, exclude: int | None = None
) -> tuple[Codes, list[tuple[str, float]]]:
    """The candidate code [1, D] (training objects' and the mean) that best renders a sample of
    `count` of `pixels`, and every candidate's name and error, best first; training object
    `exclude` is left out (to simulate an object the prior never saw)."""
    generator = torch.Generator().manual_seed(seed)
    sample = pixels.select(torch.randperm(len(pixels.origins), generator=generator)[:count].to(pixels.origins.device))
    candidates, occupied, names = candidate_codes(model)
    errors = photometric_errors(model, candidates, occupied, sample)
    if exclude is not None:
        errors[exclude] = float("inf")
    order = torch.argsort(errors).tolist()
    best = torch.tensor(order[:1], device=candidates.shape.device)
    return candidates.rows(best), [(names[i], float(errors[i])) for i in order]


def optimise(
    model: HypNeRFModel,
    variables: list[Tensor],
    loss_at: Callable[[int], Tensor],
    steps: int,
    lr: float,
    on_step: Callable[[int, float], None] | None = None,
    decay: bool = False,
) -> None:
    """Adam on `variables` (in place) for `steps` steps of loss `loss_at(step)`, the model's own
    weights frozen meanwhile. With `decay`, the
    learning rate falls from `lr` to `DECAY_FLOOR` of it along a half cosine over the steps. The one
    loop of every optimisation against a trained prior (codes, a NeRF's own parameters, CLIP guidance)."""
    optimizer = torch.optim.Adam(variables, lr=lr)
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=DECAY_FLOOR * lr) if decay else None
    )
    model.requires_grad_(False)
    try:
        for step in range(steps):
            loss = loss_at(step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if on_step is not None:
                on_step(step, float(loss.detach()))
    finally:
        model.requires_grad_(True)


def fit(
    model: HypNeRFModel,
    pixels: PosedPixels,
    variables: list[Tensor],
    make_params: Callable[[], NeRFParams],
    steps: int,
    lr: float,
    regulariser: Callable[[NeRFParams, Tensor], Tensor] | None = None,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    decay: bool = False,
) -> None:
    """Optimise `variables` (in place, `optimise`, whose `decay` it passes on) so that the NeRF
    `make_params()` renders `pixels`.

    Loss per step: RGB MSE on `RAYS_PER_STEP` random pixels against a random background (as in
    training, so the views' alpha is used), weighted by the pixels' `weight` if set, plus
    `regulariser(params, occupied)` if given. The occupancy grid follows the parameters every
    `OCCUPANCY_EVERY` steps.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    occupied: Tensor | None = None

    def loss_at(step: int) -> Tensor:
        nonlocal occupied
        params = make_params()
        if occupied is None or step % OCCUPANCY_EVERY == 0:
            occupied = occupancy_for(model, params)
        batch = pixels.select(
            torch.randint(len(pixels.origins), (RAYS_PER_STEP,), generator=generator).to(pixels.origins.device)
        )
        outputs = render_nerf(
            model,
            params,
            batch.origins,
            batch.directions,
            occupied=occupied,
            background="random",
            jitter=True,
            chunk=RAYS_PER_STEP,
        )
        pred, gt = blend_random_background(outputs["rgb"], outputs["accumulation"], batch.rgba)
        errors = ((pred - gt) ** 2).mean(dim=-1)
        loss = errors.mean() if batch.weight is None else (errors * batch.weight).sum() / batch.weight.sum()
        return loss if regulariser is None else loss + regulariser(params, occupied)

    optimise(model, variables, loss_at, steps, lr, on_step, decay)


def invert(
    model: HypNeRFModel,
    pixels: PosedPixels,
    start: Codes,
    steps: int = 200,
    lr: float = INVERT_LR,
    prior_weight: float = PRIOR_WEIGHT,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> Codes:
    """Optimise one object's codes [1, D] to render `pixels`, the hypernetwork frozen.

    `prior_weight` * 0.5 |z|^2 keeps the codes where the prior was trained (matters for one view).
    """
    shape = start.shape.detach().clone().requires_grad_(True)
    color = start.color.detach().clone().requires_grad_(True)
    fit(
        model,
        pixels,
        [shape, color],
        lambda: model.hypernetwork(Codes(shape, color)),
        steps,
        lr=lr,
        regulariser=lambda params, occupied: prior_weight * 0.5 * (shape.square().sum() + color.square().sum()),
        seed=seed,
        on_step=on_step,
    )
    return Codes(shape.detach(), color.detach())


def fresh_params(model: HypNeRFModel, seed: int = 0) -> NeRFParams:
    """One untrained NeRF of the model's architecture, as leaf tensors [1, ...] that require grad:
    the same start the hypernetwork's heads have (tables uniform in +-`TABLE_INIT`, He-initialised MLPs)."""
    generator = torch.Generator().manual_seed(seed)
    tables = (torch.rand(model.field.table_shape, generator=generator) * 2 - 1) * TABLE_INIT
    params = {"tables": tables, **model.field.init_mlp_params(generator)}
    return {name: value[None].to(model.device).requires_grad_(True) for name, value in params.items()}


REFINE_STEPS_PER_VIEW = 400
"""`refine` steps per input view (mirror images not counted), the verbs' default. On 6 unseen real
chairs (N = 300 prior, mirrored inputs), with the table bias free on every level and a constant
learning rate: 1 view, 300 steps 18.42 dB, 600 overfit (18.14); 3 views, 300 steps 20.82, 900 steps
21.87 (a NeRF from scratch in as long: 21.51). With the coarse levels only and the decaying rate
(`refine`): 400 steps 18.50 from 1 view, 1,200 steps 22.41 from 3."""


REFINE_LR = 0.003
"""`refine`'s starting learning rate. On the 6 unseen real chairs with mirrored inputs, 3 views, 1,200
steps: 0.002 / 0.003 / 0.004 give 22.54 / 22.82 / 22.75 dB (N = 1,045 prior, 120 CPU-minutes) and
22.64 / 22.80 / 22.77 (N = 55 real chairs, 25 minutes); 1 view, 400 steps: 20.26 / 20.23 / 20.23
(`benchmarks/refine_recipes.py`)."""


REFINE_DRIFT_WEIGHT = 0.03
"""`refine`'s `drift_weight`: the weight of `drift_from` on the fitted copy of the hypernetwork (the
mean over its fitted weights of their squared change over the original's variance), which holds the
copy near the trained prior while it fits the input views. On the N = 330 prior, 6 unseen real
chairs, input views and their mirror images, 64 px: one view 20.14 dB against 20.02 without, three
views 23.93 against 23.38, every chair at or above; from three views 0.1 gives 23.54 and 0.3 22.94
(`benchmarks/refine_recipes.py`, `drift:W` against `drift:0`)."""


def refine_steps_for(views: int, steps: int | None = None) -> int:
    """`steps` if given, else the default number of `refine` steps from `views` input views."""
    return steps if steps is not None else REFINE_STEPS_PER_VIEW * views


def drift_from(weights: list[Tensor], weight: float) -> Callable[[NeRFParams, Tensor], Tensor]:
    """A `fit` regulariser: `weight` * the mean over `weights` of their squared change from their
    values now, each over its variance now (so every tensor counts alike, whatever its scale)."""
    originals = [w.detach().clone() for w in weights]
    scales = [original.var().clamp_min(1e-8) for original in originals]

    def drift(_: NeRFParams, __: Tensor) -> Tensor:
        return (
            weight
            * sum(((w - o) ** 2).mean() / s for w, o, s in zip(weights, originals, scales, strict=True))
            / len(weights)
        )

    return drift


def refine(
    model: HypNeRFModel,
    pixels: PosedPixels,
    codes: Codes,
    steps: int = REFINE_STEPS_PER_VIEW,
    lr: float = REFINE_LR,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    free_levels: int | None = None,
    drift_weight: float = REFINE_DRIFT_WEIGHT,
) -> NeRFParams:
    """The NeRF of `codes`, fitted on `pixels` through the hypernetwork for `steps` steps; the
    model itself is left unchanged.

    Pivotal tuning, as in GAN inversion: a copy of the hypernetwork is fitted together with the
    codes (its trunks, the heads' biases and the MLP heads' weights; the hash-table head's weight,
    98% of the weights, is kept). The table bias moves the tables directly, as fitting the NeRF's
    own parameters would, while the MLPs and the tables' code-driven part move only as the
    hypernetwork can move them. Measured (`benchmarks/refine_recipes.py`, 6 unseen real chairs, one
    view and its mirror, 300 steps): 18.42 dB against 17.71 for fitting the NeRF's own parameters;
    600 steps overfit the view (18.14 dB), more views take more (`refine_steps_for`); fitting the
    table head's weight too gives 18.13 dB in three times the time.

    The table bias moves on the `free_levels` coarsest levels of the hash grid only (default: the
    coarser half); finer levels change only through the codes and trunks. A few views cannot pin
    down the fine levels: fitted freely, their hashed entries (shared by cells all over the box)
    turn into speckle in the views not given. Measured on the same chairs (N = 300 prior): three
    views, 900 steps, 21.99 -> 22.32 dB; one view 18.39 -> 18.43 (`benchmarks/refine_recipes.py`
    `refine` against `levels:8`).

    The learning rate decays from `lr` (`REFINE_LR`) along a half cosine (`optimise`): 400 decaying
    steps against 300 at a constant rate gave 18.50 / 18.43 dB from one view, from three views 1,200
    against 900 steps 22.41 / 22.32 (N = 300 prior; N = 36 22.92 / 22.63, N = 1,000 22.30 / 21.97).

    The loss adds `drift_weight` (`REFINE_DRIFT_WEIGHT`; 0: none) times the fitted weights' drift from
    their original values (`drift_from`), which holds the copy near the trained prior.

    The kept weight (32 MiB) is shared with the model, not copied.
    """
    kept = model.hypernetwork.table_head.linear.weight
    frozen = nn.Parameter(kept.detach(), requires_grad=False)
    hypernetwork = copy.deepcopy(model.hypernetwork, memo={id(kept): frozen})
    weights = [weight.requires_grad_(True) for weight in hypernetwork.parameters() if weight is not frozen]
    levels = model.field.grid.num_levels
    free_levels = levels // 2 if free_levels is None else free_levels
    if free_levels < levels:
        moving = (
            (torch.arange(levels, device=model.device) < free_levels)
            .float()[:, None, None]
            .expand(model.field.table_shape)
            .reshape(-1)
        )
        hypernetwork.table_head.linear.bias.register_hook(lambda grad: grad * moving)
    shape = codes.shape.detach().clone().requires_grad_(True)
    color = codes.color.detach().clone().requires_grad_(True)
    fit(
        model,
        pixels,
        [shape, color, *weights],
        lambda: hypernetwork(Codes(shape, color)),
        steps,
        lr=lr,
        seed=seed,
        on_step=on_step,
        decay=True,
        regulariser=drift_from(weights, drift_weight) if drift_weight > 0 else None,
    )
    with torch.no_grad():
        return hypernetwork(Codes(shape, color))


def fit_from_scratch(
    model: HypNeRFModel, pixels: PosedPixels, steps: int, lr: float = 0.01, seed: int = 0
) -> NeRFParams:
    """The baseline without the prior: the same small NeRF fitted to `pixels` from `fresh_params`
    for `steps` steps."""
    params = fresh_params(model, seed)
    fit(model, pixels, list(params.values()), lambda: params, steps, lr=lr, seed=seed)
    return {name: value.detach() for name, value in params.items()}
