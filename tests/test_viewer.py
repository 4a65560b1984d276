"""The viewer for real: `ns-viewer` serves a trained hyp-nerf on localhost and a websocket client
speaking viser's protocol (viser's own message classes) drives it as the web page would."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import msgspec
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SCALE = 10.0  # nerfstudio's viewer shows the world 10x larger (VISER_NERFSTUDIO_SCALE_RATIO)


class ViserClient:
    """What the browser does, minus the drawing: keeps the GUI elements the server sent, sends a
    camera and GUI changes, and returns the rendered frames the server sends back."""

    def __init__(self, url: str, timeout: float) -> None:
        from websockets.sync.client import connect

        self._connection = ExitStack()  # the connection as a context manager, closed by `close`
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.socket = self._connection.enter_context(connect(url, max_size=None, open_timeout=5))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        self.gui: dict[str, dict[str, Any]] = {}  # label -> the element's latest state

    def receive(self, seconds: float) -> list[np.ndarray]:
        """Handle messages for `seconds`; the frames [H, W, 3] uint8 that arrived, in order."""
        frames = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = self.socket.recv(timeout=left)
            except TimeoutError:
                break
            batch = msgspec.msgpack.decode(raw)
            for message in batch if isinstance(batch, list) else [batch]:
                if "label" in message and "id" in message:
                    self.gui[message["label"]] = message
                elif message.get("type") == "GuiUpdateMessage":
                    for element in self.gui.values():
                        if element["id"] == message["id"]:
                            element.update(message["updates"])
                elif message.get("type") == "BackgroundImageMessage":
                    frames.append(np.asarray(Image.open(io.BytesIO(message["rgb_bytes"])).convert("RGB")))
        return frames

    def wait_for(self, labels: Sequence[str], seconds: float = 120.0) -> None:
        """Handle messages until GUI elements with all `labels` have arrived (the server adds the
        model's controls after it has loaded the checkpoint), or `seconds` have passed."""
        deadline = time.monotonic() + seconds
        while not all(label in self.gui for label in labels) and time.monotonic() < deadline:
            self.receive(1.0)

    def frame_after(self, seconds: float = 90.0, settle: float = 3.0) -> np.ndarray:
        """The last frame once the server stops sending new ones (it refines after a change)."""
        frames = self.receive(seconds=0.0)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            new = self.receive(settle)
            if not new and frames:
                return frames[-1]
            frames += new
        raise AssertionError(f"no frame within {seconds} s")

    def send(self, message: Any) -> None:
        self.socket.send(msgspec.msgpack.encode(message.as_serializable_dict()))

    def set(self, label: str, value: Any) -> None:
        """Change a GUI element as a user would (a button press is value True)."""
        from viser._messages import GuiUpdateMessage

        self.send(GuiUpdateMessage(self.gui[label]["id"], {"value": value}))

    def look_from(self, eye: np.ndarray, fov: float = 0.7) -> None:
        """Point the camera from world position `eye` at the origin, Z up."""
        from viser import transforms
        from viser._messages import ViewerCameraMessage

        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        wxyz = transforms.SO3.from_matrix(
            np.stack([right, down, forward], axis=1)
        ).wxyz  # OpenCV: x right, y down, z forward
        self.send(
            ViewerCameraMessage(
                tuple(map(float, wxyz)), tuple(map(float, eye * SCALE)), fov, 1.0, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)
            )
        )

    def close(self) -> None:
        self._connection.close()


@pytest.fixture
def viewer(viewer_port: int):
    """A websocket client of the viewer, speaking viser's protocol."""
    client = ViserClient(f"ws://127.0.0.1:{viewer_port}", timeout=180)
    try:
        yield client
    finally:
        client.close()


def test_viewer_serves_controls_and_renders_the_chosen_object(viewer: ViserClient, trained) -> None:
    model = trained[1].pipeline.model
    labels = ("Object", "Blend with", "Shape blend", "Colour blend", "Sample a new object", "Latent file", "Text")
    viewer.wait_for(labels)
    for label in labels:
        assert label in viewer.gui, f"no {label!r} control in the viewer"
    assert list(viewer.gui["Object"]["options"]) == model.object_ids

    viewer.set("Max res", 64)
    viewer.look_from(np.array([1.6, 0.4, 0.9]))
    first = viewer.frame_after()
    assert first.shape == (64, 64, 3)
    assert first.astype(float).std() > 5, "the object is drawn, not a blank frame"

    viewer.set("Object", model.object_ids[1])
    second = viewer.frame_after()
    assert np.abs(second.astype(float) - first).mean() > 10, "choosing another object changes the frame"

    viewer.set("Sample a new object", True)
    sampled = viewer.frame_after()
    assert np.abs(sampled.astype(float) - second).mean() > 10, "a sampled object is drawn"
