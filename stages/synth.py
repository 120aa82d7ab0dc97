"""The `synth` stage — not built yet (issue 3)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'synth' stage is not implemented yet (issue 3); nothing was written")
