"""ONNX export and onnxruntime inference for AS-ES models: `graph` (the exported computation),
`export` (`petsum export` / `mwp export`), `runtime` (greedy and beam decoding with the KV cache)
and `backend` (what `--backend` and `--device` load)."""
