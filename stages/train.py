"""The `train` stage — not built yet (issue 6)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'train' stage is not implemented yet (issue 6); nothing was written")
