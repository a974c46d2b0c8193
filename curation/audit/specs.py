"""Reward model specs: `KIND:SOURCE[#EXTRA]`, the built-in names, and `[audit] models` on top of them.

KIND names the loader; SOURCE is what it loads (an open_clip name with its pretrained tag such as
`ViT-L-14/openai`, `hf-hub:ORG/REPO`, `local-dir:PATH` or `builtin:NAME` for open_clip kinds; a Hub repo id, a
local folder or `builtin:NAME` for transformers kinds). EXTRA is the second file a kind needs: the checkpoint of
`hps` (HPSv2 weights for the open_clip model) and `aesthetic` (the LAION MLP), the processor of `hf-clip`
(PickScore ships none of its own). A checkpoint is `hf:ORG/REPO/FILE`, a path (relative to the workspace) or
`builtin:NAME`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from curation.core.errors import InputError

KINDS = ("clip", "hps", "aesthetic", "hf-clip", "blip-itm", "imagereward", "hpsv3")
NEEDS_EXTRA = {"hps": "the HPS checkpoint file", "aesthetic": "the aesthetic MLP's weights file"}

# The paper's reward models by the names researchers use, and tiny random-weight stand-ins of each family
# that widespec builds offline (their scores mean nothing; they exercise the same loaders).
BUILTIN_SPECS: dict[str, str] = {
    "clip-l": "clip:ViT-L-14/openai",
    "hpsv2": "hps:ViT-H-14/laion2b_s32b_b79k#hf:xswu/HPSv2/HPS_v2_compressed.pt",
    "hpsv2.1": "hps:ViT-H-14/laion2b_s32b_b79k#hf:xswu/HPSv2/HPS_v2.1_compressed.pt",
    "pickscore": "hf-clip:yuvalkirstain/PickScore_v1#laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    "aesthetic": "aesthetic:ViT-L-14/openai#hf:camenduru/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth",
    "blip-itm": "blip-itm:Salesforce/blip-itm-large-coco",
    "imagereward": "imagereward:ImageReward-v1.0",
    "hpsv3": "hpsv3:MizzenAI/HPSv3",
    "tiny-clip": "clip:builtin:tiny-clip",
    "tiny-hps": "hps:builtin:tiny-clip#builtin:tiny-hps",
    "tiny-aesthetic": "aesthetic:builtin:tiny-clip#builtin:tiny-aesthetic",
    "tiny-pickscore": "hf-clip:builtin:tiny-hf-clip",
    "tiny-blip": "blip-itm:builtin:tiny-blip",
}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec; `name` is what the user called it (`clip-l`, or the spec itself)."""

    name: str
    kind: str
    source: str
    extra: str | None

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.source}" + (f"#{self.extra}" if self.extra else "")


def parse_spec(name: str, spec: str, where: str) -> ModelSpec:
    """Parse `KIND:SOURCE[#EXTRA]`; `where` names the setting in the error."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        raise InputError(f"{where} = {spec!r}: expected KIND:SOURCE[#EXTRA] with KIND one of {', '.join(KINDS)}")
    source, _, extra = rest.partition("#")
    if not source:
        raise InputError(f"{where} = {spec!r}: the SOURCE after {kind}: is empty")
    if kind in NEEDS_EXTRA and not extra:
        raise InputError(f"{where} = {spec!r}: {kind} needs {NEEDS_EXTRA[kind]} after '#'")
    return ModelSpec(name, kind, source, extra or None)


def resolve_names(names: str, configured: Mapping[str, str]) -> list[ModelSpec]:
    """`--models a,b,c`: each a built-in name, a name from `[audit] models`, or a spec; in order, once each."""
    known = {**BUILTIN_SPECS, **configured}
    specs: list[ModelSpec] = []
    for name in dict.fromkeys(n.strip() for n in names.split(",")):
        if not name:
            continue
        if name in known:
            where = f"audit.models.{name}" if name in configured else f"built-in model {name}"
            specs.append(parse_spec(name, known[name], where))
        elif ":" in name:
            specs.append(parse_spec(name, name, "--models"))
        else:
            raise InputError(
                f"--models: unknown reward model {name!r} (known: {', '.join(sorted(known))}; or give KIND:SOURCE)"
            )
    if not specs:
        raise InputError("--models: name at least one reward model, e.g. --models clip-l,pickscore")
    return specs
