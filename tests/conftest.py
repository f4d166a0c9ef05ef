import torch

# Bit-identical runs need a fixed thread count; one thread is also the fastest for these tiny models.
torch.set_num_threads(1)
