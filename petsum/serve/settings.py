"""`petsum serve`'s settings, validated once: the limits are part of the service's contract (docs/serve.md)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# A cPET report's findings run to about 2,000 characters, the longest to about 5,000: a report of
# more than this is not one report. The summarizer bounds its work per report besides.
MAX_REPORT_CHARS = 20_000
MAX_REPORTS = 64  # per request: a RIS asks for one report at a time, a worklist for a few dozen
MAX_BODY_BYTES = 4 * 1024 * 1024  # 64 reports at the per-report limit, 3 bytes a character in UTF-8, with room for JSON
BODY_TIMEOUT_S = 30  # a body of a few MB arrives in well under a second on a hospital network
_PRINTABLE_ASCII = re.compile(r"[!-~]+")  # what an HTTP header carries as it is
MAX_CONSENSUS = 64  # draws per finding a request may ask for (the default model's own is 24)


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Path | None = None  # None: the shipped default
    backend: str = "auto"
    device: str = "cpu"
    consensus: int | None = Field(None, ge=0, le=MAX_CONSENSUS)  # requests' default; None: the model's own setting
    api_key: str | None = Field(None, repr=False)  # from --api-key-file; never logged
    max_batch: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(10, ge=0, le=10_000)
    max_queue: int = Field(1024, ge=1)
    timeout_s: float = Field(120, gt=0)
    max_report_chars: int = Field(MAX_REPORT_CHARS, ge=1)
    max_reports: int = Field(MAX_REPORTS, ge=1)
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=1024)
    body_timeout_s: float = Field(BODY_TIMEOUT_S, gt=0)


def read_api_key(path: str | Path) -> str:
    """The key in a file (its first line, stripped); `ValueError` for an empty or short one."""
    key = Path(path).read_text(encoding="utf-8").strip().splitlines()
    if not key or len(key[0].strip()) < 16 or not _PRINTABLE_ASCII.fullmatch(key[0].strip()):
        raise ValueError(
            f"{path}: the API key file must hold a key of at least 16 printable ASCII characters (no spaces) "
            "on its first line"
        )
    return key[0].strip()
