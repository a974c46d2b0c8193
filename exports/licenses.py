"""Whether a release's dataset license can carry the terms of the generators whose images it holds (pure).

Most generator licenses leave generated images free or bind them only to use-based policies, which the card
lists. Some restrict what their images may be used for; a dataset license that grants more than that (CC-BY, say)
would hand users rights the images do not have. A generator whose license is unknown may do the same. Such a mix
is refused unless the dataset's license is `other` (the curator writes the terms) or the generator's own license,
or the curator accepts it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from curation.core.model_licenses import UNKNOWN

# Generator license id -> what it restricts about generated images.
RESTRICTED_OUTPUTS = {
    "flux-1-dev-non-commercial-license": "its images may not be used to train a model that competes with FLUX.1 [dev]",
    UNKNOWN: "no license is known for it (neither a known Hub id nor `license:` in a model card on this machine), "
    "so its terms may restrict its images",
}
CARRIES_ANY_TERMS = "other"


def license_conflicts(dataset_license: str, generator_licenses: Mapping[str, str]) -> list[str]:
    """One sentence per generator whose license restricts (or may restrict) its images beyond what
    `dataset_license` conveys."""
    return [
        f"{model} (license {license_id}): {RESTRICTED_OUTPUTS[license_id]}"
        for model, license_id in sorted(generator_licenses.items())
        if license_id in RESTRICTED_OUTPUTS and dataset_license not in (CARRIES_ANY_TERMS, license_id)
    ]
