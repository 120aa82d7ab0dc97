"""The `report` stage — not built yet (issue 7)."""

from stages import NotImplementedStage


def run(config, **options):
    raise NotImplementedStage("the 'report' stage is not implemented yet (issue 7); nothing was written")
