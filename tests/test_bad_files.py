"""Bad files a user passes: one line naming the file, exit status 1, no traceback.

Every case runs the real verb (`hypnerf-ns ...` in this process). The verbs raise `HypnerfError`,
a SystemExit whose code is the message: Python prints it as one line and exits with status 1;
anything else (a traceback) fails the test. Trainer resume is covered in test_faults.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from hypnerf_ns.cli import entrypoint
from hypnerf_ns.nerf.latent_files import FinetunedNeRF, Latent
from hypnerf_ns.nerf.text_mapping import TextToCodes, save_text_mapping
from hypnerf_ns.tasks.denoise import Denoiser, save_denoiser

pytestmark = pytest.mark.slow

OTHER_PRIOR = "0123456789abcdef"


def one_line_error(argv: list[str], names: Path) -> str:
    """Run a verb that must refuse; its message (one line naming `names`)."""
    message = one_line_error_of(lambda: entrypoint(argv))
    assert str(names) in message, message
    return message


@pytest.fixture(scope="module")
def run(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained run's config.yml in its own folder (files a run owns go next to it)."""
    config, _, _ = trained
    folder = tmp_path_factory.mktemp("run")
    shutil.copy(config.get_base_dir() / "config.yml", folder / "config.yml")
    return folder / "config.yml"


def good_files(model) -> dict[str, Callable[[Path], None]]:
    """Writers of a valid file of each kind, for this prior (`prior`) or another (`OTHER_PRIOR`)."""
    codes = model.codebook(torch.tensor([0]), sample=False)
    params = {name: value.detach() for name, value in model.hypernetwork(codes).items()}
    shape_dim, color_dim = codes.shape.shape[1], codes.color.shape[1]
    mapping = TextToCodes(384, shape_dim, color_dim)

    class Other:  # save_text_mapping takes the hypernetwork for its fingerprint
        fingerprint = staticmethod(lambda: OTHER_PRIOR)

    return {
        "latent.pt": lambda path: Latent(codes, OTHER_PRIOR, "other/config.yml").save(path),
        "nerf.pt": lambda path: FinetunedNeRF(params, OTHER_PRIOR, "other/config.yml").save(path),
        "text.pt": lambda path: save_text_mapping(mapping, path, Other, {}, {}),
        "denoiser.pt": lambda path: save_denoiser(Denoiser(8), path, OTHER_PRIOR, {}),
    }


def corrupt(kind: str, how: str, path: Path, write_good: Callable[[Path], None]) -> None:
    """Write a bad `kind` file at `path`: empty, truncated, of the wrong type, or another prior's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        write_good(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "wrong-type":
        torch.save(
            {"format": "something-else", "weights": torch.zeros(3)} if kind != "latent.pt" else torch.zeros(3), path
        )
    else:
        write_good(path)


HOW = ["empty", "truncated", "wrong-type", "other-prior"]
PROBLEMS = {
    "empty": "not a",
    "truncated": "not a",
    "wrong-type": "not a hypnerf-ns",
    "other-prior": "made with another prior",
}


@pytest.mark.parametrize("how", HOW)
def test_bad_latent_and_nerf_files(how: str, trained, run: Path, tmp_path: Path) -> None:
    _, trainer, _ = trained
    writers = good_files(trainer.pipeline.model)
    for kind, option in (("latent.pt", "--latent"), ("nerf.pt", "--finetuned")):
        path = tmp_path / kind
        corrupt(kind, how, path, writers[kind])
        message = one_line_error(["select", "--load-config", str(run), option, str(path)], path)
        assert PROBLEMS[how] in message


@pytest.mark.parametrize("how", HOW)
def test_bad_run_files_text_and_denoiser(how: str, trained, run: Path) -> None:
    _, trainer, _ = trained
    writers = good_files(trainer.pipeline.model)
    object_id = trainer.pipeline.model.object_ids[0]
    commands = {
        "text.pt": ["text", "a chair", "--load-config", str(run)],
        "denoiser.pt": ["finetune", "--load-config", str(run), "--object", object_id],
    }
    for kind, argv in commands.items():
        path = run.parent / kind
        corrupt(kind, how, path, writers[kind])
        try:
            assert PROBLEMS[how] in one_line_error(argv, path)
        finally:
            path.unlink()


def test_bad_configs_and_checkpoint_folders(trained, tmp_path: Path) -> None:
    config, _, _ = trained
    from nerfstudio.configs.method_configs import all_methods

    other_method = tmp_path / "nerfacto" / "config.yml"
    other_method.parent.mkdir()
    other_method.write_text(yaml.dump(all_methods["nerfacto"]))
    assert "a nerfacto run, not a hyp-nerf one" in one_line_error(
        ["select", "--load-config", str(other_method), "--object", "x"], other_method
    )

    garbage = tmp_path / "garbage.yml"
    garbage.write_text("{ this is: [not yaml")
    assert "not a readable nerfstudio config" in one_line_error(
        ["select", "--load-config", str(garbage), "--object", "x"], garbage
    )
    plain = tmp_path / "plain.yml"
    plain.write_text("steps: 3\n")
    assert "not a nerfstudio config" in one_line_error(["select", "--load-config", str(plain), "--object", "x"], plain)

    no_checkpoints = yaml.load((config.get_base_dir() / "config.yml").read_text(), Loader=yaml.Loader)
    no_checkpoints.timestamp = "never-trained"
    path = tmp_path / "never-trained.yml"
    path.write_text(yaml.dump(no_checkpoints))
    folder = no_checkpoints.get_checkpoint_dir()
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("no checkpoints here")
    assert "no complete checkpoint" in one_line_error(["select", "--load-config", str(path), "--object", "x"], folder)


def test_a_bad_file_exits_with_status_1_and_one_line(tmp_path: Path) -> None:
    """The mechanism as a user meets it: the process prints one line and exits 1, no traceback."""
    missing = tmp_path / "missing" / "config.yml"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hypnerf-ns"), "select", "--load-config", str(missing), "--object", "x"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"hypnerf-ns: {missing}: no such config (expected outputs/<experiment>/hyp-nerf/<timestamp>/config.yml)"
    ]


def test_resuming_from_a_folder_without_checkpoints(two_box_chairs: Path, tmp_path: Path) -> None:
    from conftest import small_config

    config = small_config(two_box_chairs, tmp_path / "outputs", steps=1)
    config.load_dir = tmp_path / "empty"
    config.load_dir.mkdir()
    trainer = config.setup(local_rank=0, world_size=1)
    message = one_line_error_of(trainer.setup)
    assert str(config.load_dir) in message and "no complete checkpoint" in message


def one_line_error_of(call: Callable[[], object]) -> str:
    """`call` must exit with a message (status 1) of one line; the message."""
    with pytest.raises(SystemExit) as caught:
        call()
    message = caught.value.code
    assert isinstance(message, str), f"exit code {message!r}, not a message (status 1)"
    assert "\n" not in message, message
    return message
