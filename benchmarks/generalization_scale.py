"""The scale study: does the prior generalize better with more training objects, at equal training steps?

For each N in `--counts`: a category of the 36 real dev chairs that are not held out (every 7th
of the 42 is; `--real-objects` takes fewer, 0 for procedural chairs alone) plus procedural chairs
(`hypnerf-ns data procedural`) up to N, the real ones drawn `--real-share` of the time; the
default hyp-nerf config trained for `--steps` steps (nerfstudio's Trainer, as `ns-train hyp-nerf`); the
image encoder trained (`hypnerf-ns encoder train`); then
`hypnerf-ns eval --task generalization` on the 6 held-out real chairs from 1 and 3 views (`--views`).
Each N's run lives in its own folder under `--workdir` and is reused when complete (a study that
is stopped resumes with the next N). Every budget is a number of steps, so a row does not depend
on the machine or on what else ran on it; the CPU time a run took is recorded beside it.

    python benchmarks/generalization_scale.py --procedural /work/data/procedural-chairs \\
        --counts 36 300 1000 --steps 12000

Writes benchmarks/results/generalization-scale.json ({"runs": [{"training_objects", "real",
"procedural", "train_steps", "train_cpu_minutes", "views", "mirror", "refine", "procedural_colours",
"kl_weight", "optimisation_steps": {method: steps} (eval's), "mean": {method: {"psnr", "ssim", "seconds"}}}]})
and a PNG plot of PSNR against N (runs with real chairs, mirrored or not as `--mirror` says).
Older rows were trained for a budget of CPU time: they have "train_minutes" (that budget) instead of
a step budget ("train_steps", where present, counts the steps it bought) and no "optimisation_steps"
(eval's `scratch` then fitted for as long as `refined` took); they are kept, and told apart from
step-budget rows (`budget_of`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.data.category import list_objects, read_json, split_holdout
from hypnerf_ns.data.furniture import PACKAGE as FURNITURE_PACKAGE
from hypnerf_ns.data.writer import write_index
from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.method.training import stepped_config, train_step
from hypnerf_ns.progress import progress_bar
from hypnerf_ns.tasks.inversion import REFINE_LR, refine_steps_for
from method_configs import hyp_nerf

CONSOLE = Console()
INPUT_VIEWS = {1: ["0"], 3: ["0", "13", "26"]}


@dataclass
class Args:
    procedural: Path
    """Root of the objects added to the real ones: procedural chairs (`hypnerf-ns data procedural`),
    or real chairs and stretched copies of them (`hypnerf-ns data furniture --exclude HELDOUT
    --stretching.copies K`; objects also in `--real` are taken once, copies of held-out chairs refused)."""
    real: Path = Path("../shared/data/chairs-dev")
    """The real dev chairs (42; every 7th is held out and evaluated)."""
    counts: list[int] = field(default_factory=lambda: [36, 300, 1000])
    """Training objects N of each run (36 = the real ones alone)."""
    views: list[Literal[1, 3]] = field(default_factory=lambda: [1, 3])
    """Input-view counts to evaluate (1 and/or 3), in this order; rows of other view counts in `--output` are kept."""
    steps: int = 12000
    """Training steps of every run (equal budgets; a 25-CPU-minute budget of older rows bought 11,915
    steps on 55 objects)."""
    real_objects: int | None = None
    """How many of the 36 real training chairs each run includes (all by default; 0: a prior of
    procedural chairs alone, whose run folder is n{N}-real0)."""
    real_share: float = 0.25
    """Share of batches' objects drawn from the real chairs (when there are procedural ones)."""
    resolution_scale: float = 0.5
    """0.5: the 128 px views are trained and evaluated at 64 px."""
    encoder_steps: int = 3000
    encoder_views: int = 16
    """Views per object the encoder trains on."""
    workdir: Path = Path("outputs/scale-study")
    output: Path = Path("benchmarks/results/generalization-scale.json")
    plot: Path = Path("benchmarks/results/generalization-scale.png")
    holdout_every: int = 7
    threads: int = 1
    """torch threads of the run. The budget is in steps, so other work on the cores makes a run slower
    but does not change what it trains (a CPU-time budget bought 2.8 steps per CPU-second with tests
    running alongside, 7.8 alone)."""
    mirror: bool = False
    """Evaluate with `eval --mirror` (each input view's mirror image as one more input view); rows say which."""
    refine_steps: int | None = None
    """`eval --refine-steps`: steps of `refined` fitting the NeRF through the hypernetwork per object
    (`scratch` fits a NeRF from scratch for as many steps as `refined` takes in all); default eval's,
    400 per input view."""
    search_pixels: int = 1024
    """Input pixels on which eval's `nearest` scores every training code (its cost grows with N)."""
    kl_weight: float | None = None
    """The model's `kl_weight` (the code regulariser; default the hyp-nerf config's); rows record it,
    and its runs get their own folders (n{N}-kl{weight})."""
    save_minutes: float = 10.0
    """Wall minutes between checkpoints of a training run (a stopped run resumes from the last)."""
    seed: int = 0


def index_entry(obj: Any, weight: float) -> dict[str, Any]:
    """objects.json entry of a listed object (`list_objects`), by its absolute folder, drawn with `weight`."""
    return {"id": obj.id, "name": obj.name, "folder": str(obj.folder.resolve()), "weight": weight}


def category_of(args: Args, count: int, root: Path) -> dict[str, int]:
    """Write a category root at `root` of the real training chairs plus count - real added ones
    (objects of `--procedural` also among the real ones taken once; held-out chairs or copies of
    them refused)."""
    real_train, heldout = split_holdout(list_objects(args.real), args.holdout_every)
    real_train = real_train[: args.real_objects]
    real_ids = {r.id for r in real_train}
    extra = [o for o in list_objects(args.procedural) if o.id not in real_ids] if count > len(real_train) else []
    sources, heldout_ids = stretched_from(args.procedural), {h.id for h in heldout}
    leaked = [o.id for o in extra if o.id in heldout_ids or sources.get(o.id) in heldout_ids]
    if leaked:
        raise SystemExit(
            f"{args.procedural} holds held-out chairs or copies of them ({leaked[0]}, ...): make it with --exclude"
        )
    procedural = extra[: max(0, count - len(real_train))]
    if len(real_train) + len(procedural) < count:
        raise SystemExit(f"{args.procedural} has {len(procedural)} objects; {count - len(real_train)} needed")
    weight = (
        args.real_share / (1.0 - args.real_share) * len(procedural) / len(real_train)
        if procedural and real_train
        else 1.0
    )
    write_index(root, "chair", [index_entry(o, weight) for o in real_train] + [index_entry(o, 1.0) for o in procedural])
    return {"real": len(real_train), "procedural": len(procedural)}


def index_entries(root: Path) -> list[dict[str, Any]]:
    """The entries of `root`'s objects.json (none without one)."""
    return read_json(root / "objects.json")["objects"] if (root / "objects.json").is_file() else []


def stretched_from(root: Path) -> dict[str, str]:
    """Stretched copy in `root` (`data furniture --stretching.copies`) -> the object it was made from."""
    entries = index_entries(root)
    return {e["id"]: e["stretched_from"] for e in entries if "stretched_from" in e}


def procedural_colours(root: Path) -> str:
    """How the added objects were made: for procedural ones how they were coloured (objects.json's
    "colours"; Infinigen's alone before it was recorded), for real meshes with stretched copies
    (`data furniture --stretching.copies`) "stretched real", for real meshes alone (`data furniture`)
    "real" (rows keep the key's old name)."""
    entries = index_entries(root)
    if any("stretched_from" in entry for entry in entries):
        return "stretched real"
    if entries and entries[0].get("source", "").startswith(FURNITURE_PACKAGE):
        return "real"
    return entries[0].get("colours", "baked albedo") if entries else "none"


def refine_label(steps: int) -> str:
    """How `refined` was fitted, as rows record it. Older rows name earlier recipes: "own parameters,
    15 s" (the NeRF's own parameters fitted for a number of seconds), "hypernetwork, 300 steps" (the
    table bias on every level); of the "coarse tables" rows, those of 300 steps per view were fitted
    at a constant learning rate, the others (as now) with one decaying from the rate named."""
    return f"hypernetwork, coarse tables, {steps} steps, lr {REFINE_LR:g}"


def kl_weight_of(args: Args) -> float:
    """The code regulariser's weight the runs train with."""
    return hyp_nerf.config.pipeline.model.kl_weight if args.kl_weight is None else args.kl_weight


def heldout_of(args: Args, root: Path) -> Path:
    """Write a category root at `root` of the held-out real chairs (every `--holdout-every`-th),
    the objects every run is evaluated on, whatever it was trained on; return it."""
    _, heldout = split_holdout(list_objects(args.real), args.holdout_every)
    write_index(root, "chair", [index_entry(o, 1.0) for o in heldout])
    return root


def train(args: Args, data: Path, run: Path) -> Path:
    """Train for `--steps` steps; save the checkpoint and config; return the config path. A
    checkpoint, the last step and the CPU time spent (`time.process_time`, recorded, not a budget)
    are saved every `--save-minutes`, and a stopped run resumes from them."""
    config = stepped_config(hyp_nerf.config, data, run, args.resolution_scale, args.seed)
    config.experiment_name = "study"
    if args.kl_weight is not None:
        config.pipeline.model.kl_weight = args.kl_weight
    config.timestamp = "run"
    progress_file = run / "train-progress.json"
    seconds, step = 0.0, 0
    if progress_file.is_file():
        saved = json.loads(progress_file.read_text())
        seconds, step = saved["cpu_seconds"], saved["step"] + 1
        config.load_dir = config.get_base_dir() / "nerfstudio_models"
        config.load_step = saved["step"]
    torch.manual_seed(args.seed + step)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    config.save_config()
    last_save = time.perf_counter()
    with progress_bar(info=True) as progress:
        task = progress.add_task(f"training on {data}", total=args.steps, completed=step, info="")
        while step < args.steps:
            before = time.process_time()
            result = train_step(trainer, step)
            seconds += time.process_time() - before
            progress.update(task, completed=step + 1, info=f"step {step} loss {result.loss:.4f}")
            if time.perf_counter() - last_save > args.save_minutes * 60:
                trainer.save_checkpoint(step)
                write_text_atomic(progress_file, json.dumps({"cpu_seconds": seconds, "step": step}))
                last_save = time.perf_counter()
            step += 1
    trainer.save_checkpoint(step - 1)
    write_text_atomic(progress_file, json.dumps({"cpu_seconds": seconds, "step": step - 1}))
    return config.get_base_dir() / "config.yml"


def run_one(args: Args, count: int) -> list[dict[str, Any]]:
    """Train, encoder, eval for one N (each stage skipped when its result exists); the study's rows."""
    real = "" if args.real_objects is None else f"-real{args.real_objects}"
    kl = (
        "" if args.kl_weight is None else f"-kl{args.kl_weight:g}"
    )  # a prior trained with another KL weight is another run
    run = args.workdir / f"n{count}{real}{kl}"
    data = run / "data"
    composition = category_of(args, count, data)
    config_path = run / "study" / "hyp-nerf" / "run" / "config.yml"
    done = run / "train.json"
    if not done.is_file():
        start = time.perf_counter()
        config_path = train(args, data, run)
        write_text_atomic(done, json.dumps({"wall_seconds": time.perf_counter() - start}))
    saved = json.loads((run / "train-progress.json").read_text())
    if saved["step"] + 1 != args.steps:  # its rows would be labelled with the wrong budget
        raise SystemExit(
            f"{run} trained for {saved['step'] + 1} steps, not --steps {args.steps}: use another --workdir"
        )
    if not (config_path.parent / "encoder.pt").is_file():
        entrypoint(
            [
                "encoder",
                "train",
                "--load-config",
                str(config_path),
                "--steps",
                str(args.encoder_steps),
                "--views-per-object",
                str(args.encoder_views),
            ]
        )
    rows = []
    colours = procedural_colours(args.procedural) if composition["procedural"] else "none"
    heldout = heldout_of(args, run / "heldout")
    for views in args.views:
        indices, refine_steps = INPUT_VIEWS[views], refine_steps_for(views, args.refine_steps)
        report_path = (
            run
            / f"generalization-{views}view{'-mirror' if args.mirror else ''}-refine{refine_steps}-lr{REFINE_LR:g}.json"
        )
        if not report_path.is_file() or "optimisation_steps" not in json.loads(report_path.read_text()):
            # (an older report, whose `scratch` fitted for a time, is made again)
            entrypoint(
                [
                    "eval",
                    "--load-config",
                    str(config_path),
                    "--data",
                    str(heldout),
                    "--input-views",
                    *indices,
                    "--search-pixels",
                    str(args.search_pixels),
                    "--refine-steps",
                    str(refine_steps),
                    "--output",
                    str(report_path),
                ]
                + (["--mirror"] if args.mirror else [])
            )
        report = json.loads(report_path.read_text())
        mean = {
            method: {k: v for k, v in metrics.items() if k in ("psnr", "ssim", "seconds")}
            for method, metrics in report["mean"].items()
        }
        rows.append(
            {
                "training_objects": count,
                **composition,
                "train_steps": args.steps,
                "train_cpu_minutes": round(saved["cpu_seconds"] / 60, 1),
                "views": views,
                "mirror": args.mirror,
                "refine": refine_label(refine_steps),
                "procedural_colours": colours,
                "kl_weight": kl_weight_of(args),
                "optimisation_steps": report["optimisation_steps"],
                "mean": mean,
            }
        )
    return rows


def plot(
    rows: list[dict[str, Any]],
    path: Path,
    mirror: bool,
    refinement: dict[int, str],
    colours: str,
    kl_weight: float,
    steps: int,
) -> None:
    """PSNR against N, one line per method and number of input views (the runs with real chairs,
    trained for `steps` steps with `kl_weight`, evaluated with or without mirrored input views and
    refined as `refinement` says per number of input views, procedural chairs coloured as `colours` says)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, views in zip(axes, INPUT_VIEWS, strict=True):
        wanted = {
            "views": views,
            "mirror": mirror,
            "refine": refinement[views],
            "kl_weight": kl_weight,
        }
        chosen = sorted(
            (
                r
                for r in rows
                if all(r[k] == v for k, v in wanted.items())
                and budget_of(r) == step_budget(steps)
                and r["real"] > 0
                and r["procedural_colours"] in (colours, "none")
            ),
            key=lambda r: r["training_objects"],
        )
        for method in sorted({m for r in chosen for m in r["mean"]}):
            points = [(r["training_objects"], r["mean"][method]["psnr"]) for r in chosen if method in r["mean"]]
            axis.plot(*zip(*points, strict=True), marker="o", label=method)
        axis.set_xscale("log")
        counts = sorted({r["training_objects"] for r in chosen})
        axis.set_xticks(counts, [f"{count:,}" for count in counts])
        axis.minorticks_off()
        axis.set_xlabel(
            "training objects N (36 real + "
            + {"stretched real": "more real and stretched copies", "real": "more real"}.get(colours, "procedural")
            + ")"
        )
        axis.set_title(
            f"{views} input view{'s' if views > 1 else ''}{' + mirrored' if mirror else ''}, 6 unseen real chairs\n"
            f"{steps:,} training steps\n(refined: {refinement[views]})",
            fontsize=10,
        )
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test-view PSNR (dB), 64 px")
    labelled = [axis for axis in axes if axis.lines]  # one legend, on the right-most plot with lines
    if labelled:
        labelled[-1].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def step_budget(steps: int) -> str:
    """`budget_of` a row trained for `steps` steps."""
    return f"{steps} steps"


def budget_of(row: dict[str, Any]) -> str:
    """A row's training budget: "N steps", or for older rows, trained for a budget of CPU time,
    "M CPU-minutes" (their "train_steps", where present, counts the steps that time bought)."""
    if "train_minutes" in row:
        return f"{row['train_minutes']:g} CPU-minutes"
    return step_budget(row["train_steps"])


def merged_rows(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows already in `path` (other N, real objects, training budget, views, mirroring, refinement,
    KL weight or procedural colouring, e.g. from a run in another process) with `new` replacing those
    that agree on all of them."""

    def key(row: dict[str, Any]) -> tuple[int, int, str, int, bool, str, str, float]:
        return (
            row["training_objects"],
            row["real"],
            budget_of(row),
            row["views"],
            row["mirror"],
            row["refine"],
            row["procedural_colours"],
            row["kl_weight"],
        )

    measured = {key(r) for r in new}
    old = json.loads(path.read_text())["runs"] if path.is_file() else []
    return sorted([r for r in old if key(r) not in measured] + new, key=key)


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    for count in args.counts:
        rows = merged_rows(args.output, run_one(args, count))
        write_text_atomic(args.output, json.dumps({"runs": rows}, indent=1) + "\n")
        refinement = {views: refine_label(refine_steps_for(views, args.refine_steps)) for views in INPUT_VIEWS}
        plot(
            rows,
            args.plot,
            args.mirror,
            refinement,
            procedural_colours(args.procedural),
            kl_weight_of(args),
            args.steps,
        )
    table = Table(title="generalization against training objects")
    methods = sorted({m for r in rows for m in r["mean"]})
    for column in ("N", "real", "budget", "steps", "views", "mirror", "refine", "procedural colours", *methods):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["training_objects"]),
            str(r["real"]),
            budget_of(r),
            str(r.get("train_steps", "-")),
            str(r["views"]),
            "yes" if r["mirror"] else "no",
            r["refine"],
            r["procedural_colours"][:12],
            *(f"{r['mean'][m]['psnr']:.2f}" if m in r["mean"] else "-" for m in methods),
        )
    CONSOLE.print(table)
    CONSOLE.print(f"wrote {args.output} and {args.plot}")


if __name__ == "__main__":
    main(tyro.cli(Args))
