"""`python -m petsum.cli ARGS` is `petsum ARGS`: what each torchrun process of `petsum train --nproc` runs."""

from petsum.cli import main

main(prog_name="petsum")
