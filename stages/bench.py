"""The `bench` stage — not built yet (issue 8)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'bench' stage is not implemented yet (issue 8); nothing was written")
