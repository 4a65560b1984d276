"""Hash-encoding benchmark: fused CPU kernel vs the pure-torch reference, forward + backward.

    python benchmarks/encoding.py

Prints a table and writes JSON (default benchmarks/results/encoding.json).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from rich.console import Console
from rich.table import Table

from hypnerf_ns.files import write_text_atomic
from hypnerf_ns.nerf.cpu_kernels import cpu_kernels
from hypnerf_ns.nerf.encoding import HashGridSpec, hash_encode, hash_encode_reference


@dataclass
class Args:
    points: int = 100_000
    objects: int = 8
    repeats: int = 3
    output: Path = Path("benchmarks/results/encoding.json")


def points_per_second(encode, spec: HashGridSpec, args: Args) -> float:
    tables = torch.randn(args.objects, spec.num_levels, spec.table_size, spec.features, requires_grad=True)
    x = torch.rand(args.points, 3)
    slot = torch.randint(0, args.objects, (args.points,)).sort().values
    grad = torch.randn(args.points, spec.output_dim)
    best = float("inf")
    for _ in range(args.repeats + 1):  # the first run warms up
        start = time.perf_counter()
        encode(x, slot, tables, spec).backward(grad)
        best = min(best, time.perf_counter() - start)
    return args.points / best


def main(args: Args) -> None:
    assert cpu_kernels() is not None, "the CPU kernel did not build"
    rows = []
    for spec in (HashGridSpec(), HashGridSpec(num_levels=16, log2_table_size=14, max_resolution=256)):
        for name, encode in (("fused kernel", hash_encode), ("torch reference", hash_encode_reference)):
            rows.append({"levels": spec.num_levels, "log2_table_size": spec.log2_table_size, "implementation": name,
                         "points_per_second": points_per_second(encode, spec, args)})  # fmt: skip
    table = Table(title=f"hash encoding, forward + backward, {args.points} points of {args.objects} objects")
    for column in ("levels", "table", "implementation", "M points/s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["levels"]), f"2^{r['log2_table_size']}", r["implementation"], f"{r['points_per_second'] / 1e6:.2f}"
        )
    Console().print(table)
    write_text_atomic(
        args.output, json.dumps({"benchmark": "encoding", "threads": torch.get_num_threads(), "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
