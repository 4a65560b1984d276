"""`hypnerf-ns`: the verbs nerfstudio has no command for.

    hypnerf-ns data meshes|furniture|srn|abo|check|captions ...
    hypnerf-ns invert --load-config CFG --data OBJECT_DIR --views 0 [3 7 ...]
    hypnerf-ns retrieve --load-config CFG --camera OBJECT_DIR/transforms_test.json --frame 3 [--image IMG]
    hypnerf-ns eval --load-config CFG --data ROOT --task generalization|reconstruction|retrieval --output FILE.json [--finetune]
    hypnerf-ns denoiser train --load-config CFG
    hypnerf-ns finetune --load-config CFG (--latent FILE | --object ID)
    hypnerf-ns select --load-config CFG (--object ID | --latent FILE | --finetuned FILE)
    hypnerf-ns render turntable|morph|sheet --load-config CFG ...
    hypnerf-ns export mesh --load-config CFG (--object ID | --latent FILE | --finetuned FILE) --output MESH.ply
    hypnerf-ns text "a green wooden stool" --load-config CFG [--colour red]

Each verb is a command dataclass with a `main()` method, or a dict of sub-verbs to such classes; tyro builds the
options from their fields and docstrings. The top level is dispatched by hand so that every
verb keeps its own description in `hypnerf-ns --help`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Dict, List, Optional, Tuple

import tyro

warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # noise from nerfstudio's imports

from hypnerf_ns.commands import Invert  # noqa: E402
from hypnerf_ns.data.abo import ConvertABO  # noqa: E402
from hypnerf_ns.evaluation import Eval  # noqa: E402
from hypnerf_ns.data.check import Check  # noqa: E402
from hypnerf_ns.data.furniture import Furniture  # noqa: E402
from hypnerf_ns.data.meshes import Meshes  # noqa: E402
from hypnerf_ns.data.srn import ConvertSRN  # noqa: E402
from hypnerf_ns.denoise import TrainDenoiser  # noqa: E402
from hypnerf_ns.finetune import Finetune  # noqa: E402
from hypnerf_ns.mesh import ExportMesh  # noqa: E402
from hypnerf_ns.render import Morph, Sheet, Turntable  # noqa: E402
from hypnerf_ns.retrieval import Retrieve  # noqa: E402
from hypnerf_ns.select import Select  # noqa: E402
from hypnerf_ns.text import Text  # noqa: E402
from hypnerf_ns.captions import Captions  # noqa: E402

DATA_COMMANDS = {"meshes": Meshes, "furniture": Furniture, "srn": ConvertSRN, "abo": ConvertABO, "check": Check, "captions": Captions}
DENOISER_COMMANDS = {"train": TrainDenoiser}
EXPORT_COMMANDS = {"mesh": ExportMesh}
RENDER_COMMANDS = {"turntable": Turntable, "morph": Morph, "sheet": Sheet}

VERBS: Dict[str, Tuple[Any, str]] = {
    "data": (DATA_COMMANDS, "make, convert and check category datasets"),
    "invert": (Invert, "fit a trained prior to posed views of a new object: latent file + renders"),
    "retrieve": (Retrieve, "rank a trained prior's objects for a posed query image"),
    "denoiser": (DENOISER_COMMANDS, "train a prior's denoiser (for finetune) on renders of its training objects"),
    "finetune": (Finetune, "denoise-and-finetune the NeRF of a latent file or training object: a standalone NeRF file"),
    "select": (Select, "write a config that makes ns-export, ns-render and ns-viewer show one object, latent or finetuned NeRF"),
    "export": (EXPORT_COMMANDS, "export an object straight from its generated NeRF (mesh: marching cubes on the density)"),
    "render": (RENDER_COMMANDS, "turntable video of one object, morph video between two, contact sheet of objects or prior samples"),
    "text": (Text, "generate an object from a text prompt (offline text encoder): latent file + turntable video"),
    "eval": (Eval, "evaluate a trained prior: generalization, reconstruction (compression) or retrieval, with baselines"),
}


def usage() -> str:
    """Top-level help: the verbs and what they do."""
    lines = ["usage: hypnerf-ns VERB [-h] ...", "", "HyP-NeRF category priors: the verbs nerfstudio has no command for.", "", "verbs:"]
    lines += [f"  {name:<10} {description}" for name, (_, description) in VERBS.items()]
    return "\n".join(lines)


def entrypoint(argv: Optional[List[str]] = None) -> None:
    """Console-script entry point: `hypnerf-ns VERB ...`."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    if argv[0] not in VERBS:
        print(usage(), file=sys.stderr)
        raise SystemExit(f"hypnerf-ns: unknown verb {argv[0]!r}")
    command_type, description = VERBS[argv[0]]
    tyro.extras.set_accent_color("bright_yellow")
    if isinstance(command_type, dict):  # a verb with sub-verbs
        command = tyro.extras.subcommand_cli_from_dict(command_type, args=argv[1:], prog=f"hypnerf-ns {argv[0]}", description=description)
    else:
        command = tyro.cli(command_type, args=argv[1:], prog=f"hypnerf-ns {argv[0]}", description=description)
    command.main()


if __name__ == "__main__":
    entrypoint()
