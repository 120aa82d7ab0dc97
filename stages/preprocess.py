"""The `preprocess` stage — not built yet (issue 4)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'preprocess' stage is not implemented yet (issue 4); nothing was written")
