"""Worker of the two-process centroid test: python dist_worker.py RANK WORLD PORT OUT MODE."""

import sys

import torch
import torch.distributed as dist

from cmi_toolkit.method.fpdc import CentroidEstimator

rank, world, port, out, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
g = torch.Generator().manual_seed(0)
probs = torch.softmax(torch.randn(2, 8, 5, generator=g), -1)  # the same data on every rank, then split
labels = torch.randint(3, (2, 8), generator=g)
est = CentroidEstimator(num_classes=3, dim=5, mode=mode)
if mode == "ema":
    for step in range(2):
        est.update_ema(probs[step, rank::world], labels[step, rank::world])
else:
    est.begin_pass()
    for step in range(2):
        est.accumulate(probs[step, rank::world], labels[step, rank::world])
    est.end_pass()
torch.save(est.centroids, f"{out}/rank{rank}.pt")
dist.destroy_process_group()
