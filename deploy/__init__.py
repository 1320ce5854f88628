"""ONNX export and onnxruntime inference for AS-ES models.

Not built yet: `petsum export` and `--backend onnx` arrive with the deploy milestone. Only the
package name is reserved here so that the distribution layout is the one users will get."""
