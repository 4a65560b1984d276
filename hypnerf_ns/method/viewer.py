"""The viewer's object controls: which object rays without an object show (viewer, ns-render, ns-export).

    Object, Blend with, Shape blend, Colour blend   a training object, or a blend of two
    Sample a new object                             a new blend from the prior (`Codebook.blends`)
    Latent file                                     the codes of a `hypnerf-ns invert` file
    Text                                            the codes a prompt maps to (the run's text mapping)

nerfstudio's viewer finds `Viewer*` elements by walking the model's sub-modules, so the controls
are a module (without parameters or state-dict entries) that the model holds. They only choose
codes; the model turns codes into the NeRF it renders.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import torch
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerDropdown, ViewerSlider, ViewerText
from torch import nn

from hypnerf_ns.errors import HypnerfError
from hypnerf_ns.nerf.hypernetwork import Codebook, Codes, HyperNetwork
from hypnerf_ns.nerf.latent_files import load_codes
from hypnerf_ns.nerf.text_mapping import TextToCodes, codes_from_text, load_text_mapping


class ObjectControls(nn.Module):
    """The viewer panel's object controls and the codes they choose.

    Args:
        codebook, hypernetwork: the prior's (held as references, not sub-modules).
        object_ids: the training objects, in codebook order.
        active_object: the object shown first (default the first).
        text_mapping: the run's text mapping file, if `hypnerf-ns text` made one.
    """

    def __init__(
        self,
        codebook: Codebook,
        hypernetwork: HyperNetwork,
        object_ids: list[str],
        active_object: str | None,
        text_mapping: Path | None,
    ) -> None:
        super().__init__()
        self._prior = (codebook, hypernetwork)  # a tuple: not registered as sub-modules (no duplicate state-dict keys)
        self._object_ids = object_ids
        self.use_text_mapping(text_mapping)
        self._codes: Codes | None = None  # a sample, latent file or prompt shown instead of the objects
        self._shows = 0  # counts `_show` calls: tells one set of shown codes from the next
        self._samples = torch.Generator().manual_seed(0)
        default = active_object if active_object in object_ids else object_ids[0]
        back_to_objects = lambda _: self._show(None)
        self.viewer_object = ViewerDropdown(
            "Object", default, object_ids, cb_hook=back_to_objects, hint="Object shown in the viewer"
        )
        self.viewer_blend_object = ViewerDropdown(
            "Blend with", default, object_ids, cb_hook=back_to_objects, hint="Second object of the blend"
        )
        self.viewer_shape_blend = ViewerSlider(
            "Shape blend", 0.0, 0.0, 1.0, 0.05, cb_hook=back_to_objects, hint="0: first object's shape, 1: second's"
        )
        self.viewer_color_blend = ViewerSlider(
            "Colour blend", 0.0, 0.0, 1.0, 0.05, cb_hook=back_to_objects, hint="0: first object's colour, 1: second's"
        )
        self.viewer_sample = ViewerButton("Sample a new object", cb_hook=lambda _: self.show_sample())
        self.viewer_latent = ViewerText(
            "Latent file",
            "",
            cb_hook=lambda element: self.show_latent_file(element.value),
            hint="Path of a latent file (hypnerf-ns invert); Enter shows it",
        )
        text_hint = 'A description, e.g. "a green stool" or "a folding chair | red" (shape | colour); Enter shows it'
        self.viewer_text = ViewerText("Text", "", cb_hook=lambda element: self.show_text(element.value), hint=text_hint)

    def use_text_mapping(self, path: Path | None) -> None:
        """The text mapping file prompts go through (None: none yet); loaded on the first prompt."""
        self._text_mapping_path = path
        self._text_mapping: TextToCodes | None = None

    def _show(self, codes: Codes | None) -> None:
        """Show `codes` [1, D] (None: the object controls again)."""
        self._codes = codes
        self._shows += 1

    def show_sample(self) -> None:
        """Sample button: a new object from the prior (`Codebook.blends`)."""
        self._show(self._prior[0].blends(1, self._samples))

    def show_latent_file(self, path: str) -> None:
        """Latent file field: the codes of a latent file; a bad file's one-line error replaces the path."""
        if not path.strip():
            return self._show(None)
        try:
            codes = load_codes(Path(path.strip()), self._prior[1])
        except HypnerfError as error:
            self.viewer_latent.value = str(error)
            return None
        return self._show(codes)

    def show_text(self, prompt: str) -> None:
        """Text box: the object a prompt describes ("shape phrase | colour phrase" mixes two); a
        one-line error replaces the prompt if the run has no text mapping."""
        if not prompt.strip() or prompt.startswith("hypnerf-ns: "):
            return None
        try:
            if self._text_mapping_path is None:
                raise HypnerfError(
                    "no text mapping for this run yet: run `hypnerf-ns text PROMPT --load-config CONFIG` once"
                )
            if self._text_mapping is None:
                self._text_mapping = load_text_mapping(self._text_mapping_path, self._prior[1])
            shape_prompt, _, colour_prompt = prompt.partition("|")
            codes = codes_from_text(self._text_mapping, shape_prompt.strip(), colour_prompt.strip() or None)
        except HypnerfError as error:
            self.viewer_text.value = str(error)
            return None
        device = self._prior[0].shape_mean.device
        return self._show(Codes(codes.shape.to(device), codes.color.to(device)))

    def shown(self) -> Hashable:
        """A key that changes exactly when the chosen codes change."""
        if self._codes is not None:
            return ("codes", self._shows)
        return (
            "objects",
            self.viewer_object.value,
            self.viewer_blend_object.value,
            float(self.viewer_shape_blend.value),
            float(self.viewer_color_blend.value),
        )

    def codes(self) -> Codes:
        """The chosen codes [1, D]: a sample, latent file or prompt if one is shown, else the picked object or blend."""
        if self._codes is not None:
            return self._codes
        codebook = self._prior[0]
        index = torch.tensor(
            [self._object_ids.index(self.viewer_object.value), self._object_ids.index(self.viewer_blend_object.value)],
            device=codebook.shape_mean.device,
        )
        both = codebook(index, sample=False)
        first, second = both.rows(slice(None, 1)), both.rows(slice(1, None))
        return first.lerp(second, float(self.viewer_shape_blend.value), float(self.viewer_color_blend.value))
