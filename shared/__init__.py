"""AS-ES core: task-agnostic segmentation, datasets, training and iterative generation.

Nothing in this package imports `petsum` or `mwp`; tasks plug in through `shared.adapter.TaskAdapter`.
Heavy libraries (torch, transformers) are imported inside the modules that need them, so that
importing `shared` (and every CLI's `--help`) stays fast.
"""

__version__ = "0.1.0"
