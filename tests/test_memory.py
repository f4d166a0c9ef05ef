"""kdlib.metrics.activation_bytes: the activation memory of one forward pass, against shapes counted by hand."""
import torch
from torch import nn

from device_probe import caller_model, follows_meta, on_meta, untouched
from kdlib import models
from kdlib.metrics import activation_bytes


def test_mlp_counted_by_hand():
    model = models.mlp((1, 8, 8), 10, width=256, depth=2, seed=0)
    # inputs 64 floats per image; Flatten is a view (0 new); Linear 256, ReLU 256, Linear 256, ReLU 256, Linear 10
    stored, peak = activation_bytes(model, torch.zeros(32, 1, 8, 8))
    assert stored == 32 * 4 * (64 + 4 * 256 + 10)
    assert peak == 32 * 4 * (256 + 256)  # a ReLU's input and output, both alive at once
    stored64, peak64 = activation_bytes(model.double(), torch.zeros(32, 1, 8, 8, dtype=torch.float64))
    assert (stored64, peak64) == (2 * stored, 2 * peak)  # float64: 8 bytes a number


def test_cnn_counted_by_hand():
    model = models.cnn(1, 10, width=16, depth=2, seed=0)
    # per image: input 64; conv 16×8×8, ReLU 16×8×8, pool 16×4×4, conv 32×4×4, ReLU 32×4×4, pool 32×2×2,
    # global pool 32, Flatten (a view), Linear 10
    per_image = [64, 1024, 1024, 256, 512, 512, 128, 32, 0, 10]
    stored, peak = activation_bytes(model, torch.zeros(4, 1, 8, 8))
    assert stored == 4 * 4 * sum(per_image)
    assert peak == 4 * 4 * (1024 + 1024)


def test_in_place_layers_add_nothing_and_the_input_counts_once():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(inplace=True))
    stored, peak = activation_bytes(model, torch.zeros(3, 5))
    assert stored == 3 * 4 * (5 + 7) and peak == 3 * 4 * (5 + 7)
    assert activation_bytes(nn.Sequential(), torch.zeros(2, 5)) == (40, 40)  # no layer: just the inputs


def test_the_caller_model_is_left_as_it_was_and_its_hooks_removed():
    model = caller_model("mixed")
    before = untouched(model)
    running = model[2].running_mean.clone()
    activation_bytes(model, torch.rand(6, 1, 8, 8))
    assert untouched(model) == before
    assert torch.equal(model[2].running_mean, running)  # eval mode inside: batch-norm statistics unchanged
    assert all(not module._forward_hooks for module in model.modules())


def test_it_runs_where_the_model_is():
    meta, seen = on_meta(models.mlp((1, 8, 8), 3, width=6, depth=1, seed=0))
    follows_meta(lambda: activation_bytes(meta, torch.rand(4, 1, 8, 8)))
    assert seen and set(seen) == {"meta"}
