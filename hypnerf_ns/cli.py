"""`hypnerf-ns`: the verbs nerfstudio has no command for.

    hypnerf-ns data meshes|furniture|srn|abo|check ...
    hypnerf-ns invert --load-config CFG --data OBJECT_DIR --views 0 [3 7 ...]
    hypnerf-ns retrieve --load-config CFG --camera OBJECT_DIR/transforms_test.json --frame 3 [--image IMG]
    hypnerf-ns eval --load-config CFG --data ROOT --task generalization|reconstruction|retrieval --output FILE.json

Each verb is a tyro union of command dataclasses, each with a `main()` method; tyro builds the
options from their fields and docstrings. The top level is dispatched by hand so that every
verb keeps its own description in `hypnerf-ns --help`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import tyro
from typing_extensions import Annotated

warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # noise from nerfstudio's imports

from hypnerf_ns.commands import Invert  # noqa: E402
from hypnerf_ns.data.abo import ConvertABO  # noqa: E402
from hypnerf_ns.evaluation import Eval  # noqa: E402
from hypnerf_ns.data.check import Check  # noqa: E402
from hypnerf_ns.data.furniture import Furniture  # noqa: E402
from hypnerf_ns.data.meshes import Meshes  # noqa: E402
from hypnerf_ns.data.srn import ConvertSRN  # noqa: E402
from hypnerf_ns.retrieval import Retrieve  # noqa: E402

DataCommand = Union[
    Annotated[Meshes, tyro.conf.subcommand("meshes")],
    Annotated[Furniture, tyro.conf.subcommand("furniture")],
    Annotated[ConvertSRN, tyro.conf.subcommand("srn")],
    Annotated[ConvertABO, tyro.conf.subcommand("abo")],
    Annotated[Check, tyro.conf.subcommand("check")],
]

VERBS: Dict[str, Tuple[Any, str]] = {
    "data": (DataCommand, "make, convert and check category datasets"),
    "invert": (Invert, "fit a trained prior to posed views of a new object: latent file + renders"),
    "retrieve": (Retrieve, "rank a trained prior's objects for a posed query image"),
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
    command = tyro.cli(command_type, args=argv[1:], prog=f"hypnerf-ns {argv[0]}", description=description)
    command.main()


if __name__ == "__main__":
    entrypoint()
