"""Data-parallel scaling: the same workload with DistributedDataParallel over 1, 2, … processes through
torchrun (gloo on CPU, nccl on CUDA); global throughput, per-rank step time, the all-reduce's share of
the step, and the scaling efficiency against one process (the report's scaling table)."""

SUITE = "scaling"


def test_scaling(planned, measure):
    measure(planned)
