"""Running the service under uvicorn: logging without report text, graceful shutdown on SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

from petsum.serve.settings import ServeSettings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Uvicorn drains the requests in flight on SIGTERM or Ctrl-C, then runs the app's shutdown (the
# batcher decodes what it was given). It waits up to the request timeout and this margin: a request
# in flight then has its answer, or its 504.
GRACEFUL_MARGIN_S = 10


def load_model(settings: ServeSettings):
    """The summarizer `settings` name, with its device warning in the log."""
    from deploy.backend import device_warning
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer.load(
        settings.model, backend=settings.backend, device=settings.device, consensus=settings.consensus
    )
    if note := device_warning(summarizer.models, settings.device):
        logging.getLogger("petsum.serve").warning(note)
    return summarizer


def serve(settings: ServeSettings, host: str, port: int) -> str | None:
    """Serve until stopped; the model's load error, if it failed to load, else None."""
    import uvicorn

    from petsum.serve.app import create_app
    from petsum.summarize.folder import model_path

    model_path(settings.model)  # a missing folder is a one-line error before anything starts
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)
    app = create_app(settings, load_model)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # the app logs each request itself, with counts and no query text
        log_config=None,  # keep the logging set up above: one format, on stderr
        timeout_graceful_shutdown=int(settings.timeout_s + settings.body_timeout_s + GRACEFUL_MARGIN_S),
        server_header=False,
    )
    server = uvicorn.Server(config)
    service = app.state.service

    def stop() -> None:
        server.should_exit = True

    service.on_load_error = stop
    # Uvicorn drains on SIGTERM or Ctrl-C, then puts back the handler it found and raises the signal
    # again: with the default handlers that kills the process (exit -15) or is a KeyboardInterrupt
    # after a clean drain. No-op handlers let `run` return, and the command exit 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    server.run()
    return f"the model failed to load: {service.load_error}" if service.load_error else None
