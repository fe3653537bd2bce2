"""Training (PyTorch, the optional ``train`` extra).

Only the modules that train or export import torch, and they do it lazily, so
``maskface.train.data`` (folder reading, splits) is usable without torch.
"""

import os

# PyTorch's OpenMP threads spin while they wait for each other. On a shared CPU (other jobs
# running) a spinning thread steals the core its partner needs: measured here, 2 threads took
# ~1 s per training image with the default policy and ~40 ms with PASSIVE. Must be set before
# the OpenMP runtime starts, i.e. before torch runs anything.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
