"""`hypnerf-ns`: the verbs nerfstudio has no command for.

    hypnerf-ns data meshes|furniture|procedural|merge|srn|abo|check|captions ...
    hypnerf-ns invert --load-config CFG --data OBJECT_DIR --views 0 [3 7 ...]
    hypnerf-ns retrieve --load-config CFG --camera OBJECT_DIR/transforms_test.json --frame 3 [--image IMG]
    hypnerf-ns eval --load-config CFG --data ROOT --task generalization|reconstruction|retrieval|text \\
        --output FILE.json [--finetune]
    hypnerf-ns encoder train --load-config CFG
    hypnerf-ns denoiser train --load-config CFG
    hypnerf-ns finetune --load-config CFG (--latent FILE | --object ID)
    hypnerf-ns select --load-config CFG (--object ID | --latent FILE | --finetuned FILE)
    hypnerf-ns render turntable|morph|sheet --load-config CFG ...
    hypnerf-ns export mesh --load-config CFG (--object ID | --latent FILE | --finetuned FILE) --output MESH.ply
    hypnerf-ns text "a green wooden stool" --load-config CFG [--colour red]
    hypnerf-ns setup

Each verb is a command dataclass with a `main()` method (one module per verb in this package;
the data verbs live with the data makers in `hypnerf_ns.data`), or a dict of sub-verbs; tyro
builds the options from their fields and docstrings. Verbs import the library and task layers,
never each other. A verb's module is imported only when it runs, after nerfstudio's own
FutureWarnings are silenced, so the first line a user sees is ours.
"""

from __future__ import annotations

import importlib
import sys
import warnings

Target = str | dict[str, str]
"""A verb: "module:Class", or sub-verb -> "module:Class"."""

VERBS: dict[str, tuple[Target, str]] = {
    "data": (
        {
            "meshes": "hypnerf_ns.data.meshes:Meshes",
            "furniture": "hypnerf_ns.data.furniture:Furniture",
            "procedural": "hypnerf_ns.data.procedural:Procedural",
            "merge": "hypnerf_ns.data.merge:Merge",
            "srn": "hypnerf_ns.data.srn:ConvertSRN",
            "abo": "hypnerf_ns.data.abo:ConvertABO",
            "check": "hypnerf_ns.data.check:Check",
            "captions": "hypnerf_ns.cli.captions:Captions",
        },
        "make, convert and check category datasets",
    ),
    "invert": (
        "hypnerf_ns.cli.invert:Invert",
        "fit a trained prior to posed views of a new object: latent file + renders",
    ),
    "retrieve": ("hypnerf_ns.cli.retrieve:Retrieve", "rank a trained prior's objects for a posed query image"),
    "encoder": (
        {"train": "hypnerf_ns.cli.encoder:TrainEncoder"},
        "train a prior's image encoder (views -> codes; the start of inversion)",
    ),
    "denoiser": (
        {"train": "hypnerf_ns.cli.denoiser:TrainDenoiser"},
        "train a prior's denoiser (for finetune) on renders of its training objects",
    ),
    "finetune": (
        "hypnerf_ns.cli.finetune:Finetune",
        "denoise-and-finetune the NeRF of a latent file or training object: a standalone NeRF file",
    ),
    "select": (
        "hypnerf_ns.cli.select:Select",
        "write a config that makes ns-export, ns-render and ns-viewer show one object, latent or finetuned NeRF",
    ),
    "export": (
        {"mesh": "hypnerf_ns.cli.export:ExportMesh"},
        "export an object straight from its generated NeRF (mesh: marching cubes on the density)",
    ),
    "render": (
        {
            "turntable": "hypnerf_ns.cli.render:Turntable",
            "morph": "hypnerf_ns.cli.render:Morph",
            "sheet": "hypnerf_ns.cli.render:Sheet",
        },
        "turntable video of one object, morph video between two, contact sheet of objects or prior samples",
    ),
    "text": (
        "hypnerf_ns.cli.text:Text",
        "generate an object from a text prompt (offline text encoder): latent file + turntable video",
    ),
    "eval": (
        "hypnerf_ns.cli.eval:Eval",
        "evaluate a trained prior: generalization, reconstruction (compression), retrieval or text",
    ),
    "setup": (
        "hypnerf_ns.cli.setup:Setup",
        "ffmpeg and libusb from pip where the system has none (ns-render, ns-export; no root needed)",
    ),
}


def usage() -> str:
    """Top-level help: the verbs and what they do."""
    lines = [
        "usage: hypnerf-ns VERB [-h] ...",
        "",
        "HyP-NeRF category priors: the verbs nerfstudio has no command for.",
        "",
        "verbs:",
    ]
    lines += [f"  {name:<10} {description}" for name, (_, description) in VERBS.items()]
    return "\n".join(lines)


def command_class(target: str) -> type:
    """The command dataclass named "module:Class" (imported now)."""
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def quiet_nerfstudio_warnings() -> None:
    """Hide the FutureWarnings that nerfstudio's and torch's imports print (deprecated torch APIs), only those."""
    for module in (r"nerfstudio(\..*)?", r"torch(\..*)?"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)


def entrypoint(argv: list[str] | None = None) -> None:
    """Console-script entry point: `hypnerf-ns VERB ...`."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    if argv[0] not in VERBS:
        print(usage(), file=sys.stderr)
        raise SystemExit(f"hypnerf-ns: unknown verb {argv[0]!r}")
    import tyro

    target, description = VERBS[argv[0]]
    with warnings.catch_warnings():
        quiet_nerfstudio_warnings()
        tyro.extras.set_accent_color("bright_yellow")
        if isinstance(target, dict):  # a verb with sub-verbs
            commands = {name: command_class(sub) for name, sub in target.items()}
            command = tyro.extras.subcommand_cli_from_dict(
                commands, args=argv[1:], prog=f"hypnerf-ns {argv[0]}", description=description
            )
        else:
            command = tyro.cli(
                command_class(target), args=argv[1:], prog=f"hypnerf-ns {argv[0]}", description=description
            )
        command.main()


if __name__ == "__main__":
    entrypoint()
