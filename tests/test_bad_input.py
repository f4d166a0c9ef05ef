"""Malformed calls across kdlib's public API: each raises the right error, naming what was expected and what came.

One row per call: (name, call, expected error, fragment the message must contain).
"""
import pytest
import torch

from kdlib import data, metrics, models, training
from kdlib.losses import distillation_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy, soft_targets

S, T_, Y = torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(4, dtype=torch.int64)
X8 = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X8, torch.arange(6) % 3)
NET = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)

BAD_CALLS = [
    # temperatures and weights
    ("T = 0", lambda: soft_targets(S, 0), ValueError, "got 0"),
    ("T < 0", lambda: kd_loss(S, T_, -1.0), ValueError, "> 0, got -1.0"),
    ("T = nan", lambda: kd_loss(S, T_, float("nan")), ValueError, "finite"),
    ("T = inf", lambda: soft_targets(S, float("inf")), ValueError, "finite"),
    ("T as text", lambda: kd_loss(S, T_, "4"), TypeError, "got str"),
    ("T as bool", lambda: kd_loss(S, T_, True), TypeError, "got bool"),
    ("T as a vector", lambda: kd_loss(S, T_, torch.tensor([1.0, 2.0])), ValueError, "single number"),
    ("alpha > 1", lambda: distillation_loss(S, T_, Y, 2.0, 1.5), ValueError, "[0, 1], got 1.5"),
    ("alpha < 0", lambda: distillation_loss(S, T_, Y, 2.0, -0.1), ValueError, "alpha must be in [0, 1]"),
    ("smoothing > 1", lambda: smoothed_cross_entropy(S, Y, 1.2), ValueError, "smoothing must be in [0, 1], got 1.2"),
    ("distill alpha > 1", lambda: training.distill(NET, TEACHER, SPLIT, alpha=1.5, progress=False), ValueError, "got 1.5"),
    ("distill T = 0", lambda: training.distill(NET, TEACHER, SPLIT, temperature=0, progress=False), ValueError, "temperature"),
    ("train label smoothing 2", lambda: training.train(NET, SPLIT, label_smoothing=2, progress=False), ValueError, "got 2"),
    # shapes, batches and classes
    ("class mismatch", lambda: kd_loss(S, torch.zeros(4, 9), 2.0), ValueError, "(4, 10) and (4, 9)"),
    ("batch mismatch", lambda: logit_matching_loss(S, torch.zeros(3, 10)), ValueError, "(4, 10) and (3, 10)"),
    ("1-D logits", lambda: kd_loss(torch.zeros(10), torch.zeros(10), 2.0), ValueError, "got shape (10,)"),
    ("3-D logits", lambda: kd_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), 2.0), ValueError, "(batch, classes)"),
    ("empty batch", lambda: kd_loss(torch.zeros(0, 10), torch.zeros(0, 10), 2.0), ValueError, "empty batch"),
    ("scalar logits", lambda: soft_targets(torch.tensor(1.0), 1.0), ValueError, "got shape ()"),
    ("labels too short", lambda: distillation_loss(S, T_, Y[:3], 2.0, 0.5), ValueError, "shape (4,)"),
    ("label out of range", lambda: distillation_loss(S, T_, Y + 10, 2.0, 0.5), ValueError, "[0, 9]"),
    ("negative label", lambda: smoothed_cross_entropy(S, Y - 1, 0.1), ValueError, "got values from -1"),
    ("accuracy shape mismatch", lambda: metrics.accuracy(S, Y[:2]), ValueError, "got (4, 10) and (2,)"),
    ("class_similarity wrong class count", lambda: metrics.class_similarity(S, Y, 9), ValueError, "(N, 9)"),
    ("train x/y length mismatch", lambda: training.train(NET, data.Split(X8, Y), progress=False), ValueError, "6 and 4"),
    ("train on an empty split", lambda: training.train(NET, data.Split(X8[:0], Y[:0]), progress=False), ValueError, "empty"),
    ("train with hidden labels", lambda: training.train(NET, data.Split(X8[:4], Y - 1), progress=False), ValueError, "UNLABELLED"),
    # dtypes, devices and types
    ("int logits", lambda: kd_loss(S.long(), T_, 2.0), TypeError, "floating"),
    ("float labels", lambda: smoothed_cross_entropy(S, Y.float(), 0.1), TypeError, "int64"),
    ("list logits", lambda: logit_matching_loss([[0.0]], T_), TypeError, "got list"),
    ("teacher on another device", lambda: kd_loss(S, torch.zeros(4, 10, device="meta"), 2.0), ValueError, "cpu and meta"),
    ("labels on another device", lambda: distillation_loss(S, T_, torch.zeros(4, dtype=torch.int64, device="meta"), 2.0, 0.5),
     ValueError, "device"),
    ("train on a bare tensor", lambda: training.train(NET, X8, progress=False), TypeError, "Split"),
    # training settings and models
    ("zero epochs", lambda: training.train(NET, SPLIT, epochs=0, progress=False), ValueError, "epochs=0"),
    ("negative learning rate", lambda: training.train(NET, SPLIT, lr=-1.0, progress=False), ValueError, "lr=-1.0"),
    ("mlp width 0", lambda: models.mlp(64, 10, width=0), ValueError, "width must be an integer >= 1, got 0"),
    ("mlp depth -1", lambda: models.mlp(64, 10, depth=-1), ValueError, "depth must be an integer >= 0, got -1"),
    ("cnn no channels", lambda: models.cnn(0, 10), ValueError, "channels must be an integer >= 1, got 0"),
    ("latency repeats 0", lambda: metrics.inference_latency(NET, X8, repeats=0), ValueError, "got 0"),
    # data
    ("split fractions not summing to 1", lambda: data.split_dataset(SPLIT, fractions=(0.5, 0.4, 0.2)), ValueError, "(0.5, 0.4, 0.2)"),
    ("split two fractions", lambda: data.split_dataset(SPLIT, fractions=(0.5, 0.5)), ValueError, "3 positive numbers"),
    ("hide all labels", lambda: data.hide_labels(Y, 0.0), ValueError, "0.0"),
    ("loader length mismatch", lambda: data.make_loader((X8, Y)), ValueError, "[6, 4]"),
    ("unknown dataset", lambda: data.load_splits("cifar"), ValueError, "'cifar'"),
]


@pytest.mark.parametrize("name, call, error, fragment", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_malformed_call_raises_a_message_naming_expected_and_actual(name, call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), str(info.value)


def test_a_wrong_data_folder_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_mnist(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path) in message and "download=True" in message


def test_the_table_covers_at_least_thirty_calls():
    assert len(BAD_CALLS) >= 30
