"""petsum's run config: the core's `RunConfig` plus what only PET training has (`pet:`).

`pet.gamma` is the share of normal samples: region (or finding) instances with no abnormal item,
whose target is the fixed 'no anomaly' answer, round(γ × reports) of them. Configs and `--set`
written before this section existed say `segment.gamma`; it is read as `pet.gamma`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from shared.config import RunConfig, Strict


class PetSection(Strict):
    gamma: float = Field(1.0, ge=0, le=100, description="normal samples ('no anomaly' targets, always ES) per report")


class PetRunConfig(RunConfig):
    pet: PetSection = PetSection()

    @model_validator(mode="before")
    @classmethod
    def _older_gamma(cls, data: Any) -> Any:
        """`segment.gamma` (configs before the `pet` section) is `pet.gamma`."""
        segment = data.get("segment") if isinstance(data, dict) else None
        if isinstance(segment, dict) and "gamma" in segment:
            segment = dict(segment)
            pet = dict(data.get("pet") or {})
            pet.setdefault("gamma", segment.pop("gamma"))
            data = {**data, "segment": segment, "pet": pet}
        return data
