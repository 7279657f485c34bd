"""dnnbench: what batch size, optimizer, regularization and DataLoader settings cost when training DNNs.

Data flows one way: cases → engine → records → analysis → report / gate.
"""

__version__ = "0.1.0"
