"""PyTorch's fast paths as measured axes: optimizer implementation (for-loop, foreach, fused),
torch.compile modes, precision (bf16 autocast, tf32 on CUDA) and threads, at batch 1 and 100; each
against the default, with its accuracy, and the share of the in-run roofline it reaches."""

SUITE = "fastpaths"


def test_fastpaths(planned, measure):
    measure(planned)
