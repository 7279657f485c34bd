"""Data loading: the torchvision pipeline (PIL → ToTensor per item), a TensorDataset through
DataLoader, and device-resident tensors sliced with randperm; num_workers and pin_memory for the
DataLoader kinds. Reference: pytorch/pytorch#154318 (DataLoader workers 3-124x slower than slicing
in-memory tensors)."""

SUITE = "loaders"


def test_loaders(planned, measure):
    measure(planned)
