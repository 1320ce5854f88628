"""petsum serve: the HTTP service, its dynamic batcher and the review page (docs/serve.md)."""
