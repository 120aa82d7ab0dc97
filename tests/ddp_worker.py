"""One process of the two-process DDP test (launched by torch.distributed.run from test_train.py).

Trains through the train stage with the configuration file given as argv[1] and saves the weights
this process ends with to argv[2]/rank<RANK>.pt — the stage itself keeps only rank 0's.
"""

import os
import sys

import torch

from pipeline.config import load_config_file
from stages import train


def main(config_path: str, out_dir: str) -> None:
    real_fit = train.fit

    def fit_and_keep_the_weights(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        path = os.path.join(out_dir, f"rank{os.environ['RANK']}.pt")
        torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, path)
        return result

    train.fit = fit_and_keep_the_weights  # the stage calls the name it imported
    train.run(load_config_file(config_path), log=print, progress=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
