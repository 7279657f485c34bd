"""The study note's own experiments: its MNIST DNN (784-500-10, Adam lr 1e-3, batch 100) on MNIST
when present and on Fashion-MNIST always, and its five-optimizer race on y = x^3 + noise
(batch 20, lr 0.01, the same batches for every optimizer)."""

SUITE = "note"


def test_note(planned, measure):
    measure(planned)
