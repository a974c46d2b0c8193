"""Built-in generator presets: documented settings, license ids and what each license says about the images.

A preset name in `generator.models` stands for its Hub id with the settings below (unless
`generator.preset_settings` is false). License ids are the Hugging Face Hub identifiers, kept by Hub id in
curation.core.model_licenses (so a raw Hub id carries the same license); the `image_terms` line
is a summary for curators, not legal advice: read the license before publishing images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.core.model_licenses import known_license

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class Preset:
    name: str
    model_id: str
    steps: int
    guidance: float
    width: int
    height: int
    image_terms: str
    notes: str = ""
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    random_weights: bool = False

    @property
    def license(self) -> str:
        """Its model's Hub license id (the same whether `generator.models` names the preset or its Hub id)."""
        found = known_license(self.model_id)
        assert found is not None, f"preset {self.name}: {self.model_id} has no entry in KNOWN_LICENSES"
        return found


_FLUX_DEV_TERMS = (
    "FLUX.1 [dev] Non-Commercial License: the model may be used only non-commercially; its outputs may be used "
    "for any purpose, but not to train or distil a model that competes with FLUX.1 [dev]."
)
_RANDOM_NOTES = (
    "random weights built locally by widespec: images are noise for exercising the pipeline, not research data"
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "flux.1-dev",
            "black-forest-labs/FLUX.1-dev",
            steps=28,
            guidance=3.5,
            width=1024,
            height=1024,
            image_terms=_FLUX_DEV_TERMS,
            notes="gated on the Hub: accept the license and set HF_TOKEN",
            call_kwargs={"max_sequence_length": 512},
        ),
        Preset(
            "flux.1-krea-dev",
            "black-forest-labs/FLUX.1-Krea-dev",
            steps=28,
            guidance=4.5,
            width=1024,
            height=1024,
            image_terms=_FLUX_DEV_TERMS,
            notes="gated on the Hub: accept the license and set HF_TOKEN",
            call_kwargs={"max_sequence_length": 512},
        ),
        Preset(
            "flux.1-schnell",
            "black-forest-labs/FLUX.1-schnell",
            steps=4,
            guidance=0.0,
            width=1024,
            height=1024,
            image_terms="Apache-2.0: model and outputs usable for any purpose, commercial included.",
            notes="timestep-distilled: 4 steps, no guidance",
            call_kwargs={"max_sequence_length": 256},
        ),
        Preset(
            "sdxl",
            "stabilityai/stable-diffusion-xl-base-1.0",
            steps=40,
            guidance=5.0,
            width=1024,
            height=1024,
            image_terms=(
                "CreativeML Open RAIL++-M: outputs are yours, but the license's use restrictions (Attachment A) "
                "apply to how they are used and shared."
            ),
        ),
        Preset(
            "sd3.5-medium",
            "stabilityai/stable-diffusion-3.5-medium",
            steps=40,
            guidance=4.5,
            width=1024,
            height=1024,
            image_terms=(
                "Stability AI Community License: free for research and non-commercial use, and commercial use "
                "under USD 1M annual revenue; outputs are yours, subject to the Acceptable Use Policy."
            ),
            notes="gated on the Hub: accept the license and set HF_TOKEN",
        ),
        Preset(
            "playground-v2.5",
            "playgroundai/playground-v2.5-1024px-aesthetic",
            steps=50,
            guidance=3.0,
            width=1024,
            height=1024,
            image_terms=(
                "Playground v2.5 Community License: outputs may be used, including commercially, within the "
                "license's use restrictions; large-scale services need a separate agreement."
            ),
        ),
        Preset(
            "builtin:tiny-sd",
            "builtin:tiny-sd",
            steps=2,
            guidance=3.5,
            width=64,
            height=64,
            image_terms="Images from random weights: no third-party terms, and no research value.",
            notes=_RANDOM_NOTES,
            random_weights=True,
        ),
        Preset(
            "builtin:tiny-flux",
            "builtin:tiny-flux",
            steps=2,
            guidance=3.5,
            width=64,
            height=64,
            image_terms="Images from random weights: no third-party terms, and no research value.",
            notes=_RANDOM_NOTES,
            call_kwargs={"max_sequence_length": 32},
            random_weights=True,
        ),
    )
}


def find_preset(spec: str) -> Preset | None:
    """The preset named `spec` (case-insensitive), if any."""
    return PRESETS.get(spec.strip().lower())
