"""Models: what the network itself costs and buys. LeNet-5 (convolutions; BatchNorm2d and Dropout2d on its
feature maps; channels_last against the default layout) beside the note's MLP, and the note's deep net
(three hidden layers) with ReLU against sigmoid: the note's claim that gradients vanish toward the input
through sigmoid layers, read from the first layer's gradient norm over the last hidden layer's."""

SUITE = "models"


def test_models(planned, measure):
    measure(planned)
