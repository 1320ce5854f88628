"""`petsum serve`: the HTTP service and review page (the `serve` extra: FastAPI and uvicorn)."""

from __future__ import annotations

import click

from petsum.cli.options import consensus_option
from shared.cli import fail, friendly_errors, serving_options


@click.command(name="serve")
@serving_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--api-key-file", type=click.Path(dir_okay=False), help="Every /v1 call then needs this key as a Bearer.")
@click.option("--max-batch", type=click.IntRange(1, 4096), default=32, show_default=True, help="Reports a batch.")
@click.option("--max-wait-ms", type=click.FloatRange(0, 10_000), default=10, show_default=True)
@click.option("--max-queue", type=click.IntRange(min=1), default=1024, show_default=True, help="Reports waiting.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=120, show_default=True)
@consensus_option
@friendly_errors
def command(model_dir: str | None, backend: str, device: str, host: str, port: int, api_key_file: str | None, **limits):
    """Serve draft impressions over HTTP (POST /v1/summarize) and the review page at /."""
    from petsum.serve.run import serve
    from petsum.serve.settings import ServeSettings, read_api_key

    settings = ServeSettings(
        model=model_dir,
        backend=backend,
        device=device,
        api_key=read_api_key(api_key_file) if api_key_file else None,
        **limits,
    )
    if error := serve(settings, host, port):
        fail(error)
