"""The `evaluate` stage — not built yet (issue 6)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'evaluate' stage is not implemented yet (issue 6); nothing was written")
