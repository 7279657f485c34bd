"""The harness's own cost: the cases `dnnbench harness` runs here, against a bare loop and the CLI."""

SUITE = "harness"


def test_harness(planned, measure):
    measure(planned)
