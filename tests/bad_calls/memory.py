"""Malformed calls to kdlib.metrics.activation_bytes (the activation memory of one forward pass)."""
import numpy as np
import torch

from kdlib import models
from kdlib.metrics import activation_bytes

NET = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=0)
X = torch.zeros(6, 1, 8, 8)

BAD_CALLS = [
    ("activations of a model given by name", lambda: activation_bytes("mlp", X), TypeError,
     "model must be a torch.nn.Module, got str"),
    ("activations of a model builder", lambda: activation_bytes(models.mlp, X), TypeError,
     "model must be a torch.nn.Module, got function"),
    ("activations of a list of images", lambda: activation_bytes(NET, [X]), TypeError,
     "inputs must be a torch.Tensor, got list"),
    ("activations of a numpy batch", lambda: activation_bytes(NET, np.zeros((6, 1, 8, 8))), TypeError,
     "inputs must be a torch.Tensor, got ndarray"),
    ("activations of integer images", lambda: activation_bytes(NET, X.long()), TypeError,
     "inputs must be a floating-point tensor, got dtype torch.int64"),
    ("activations of boolean images", lambda: activation_bytes(NET, X.bool()), TypeError,
     "inputs must be a floating-point tensor, got dtype torch.bool"),
    ("activations of an empty batch", lambda: activation_bytes(NET, X[:0]), ValueError,
     "inputs must be a non-empty batch (batch, ...), got shape (0, 1, 8, 8)"),
    ("activations of one flat image", lambda: activation_bytes(NET, X[0].flatten()), ValueError,
     "inputs must be a non-empty batch (batch, ...), got shape (64,)"),
    ("activations with the batch size as a keyword", lambda: activation_bytes(NET, X, batch_size=2), TypeError,
     "unexpected keyword argument 'batch_size'"),
]
