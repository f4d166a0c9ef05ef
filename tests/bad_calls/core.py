"""Malformed calls to kdlib's core modules (losses, training, metrics, models, data, checks, devices)."""
import torch

from kdlib import data, devices, metrics, models, plots, training
from kdlib.losses import (distillation_loss, dkd_loss, hard_loss, kd_loss, logit_matching_loss, smoothed_cross_entropy,
                          soft_targets)

S, T_, Y = torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(4, dtype=torch.int64)
X8 = torch.zeros(6, 1, 8, 8)
SPLIT = data.Split(X8, torch.arange(6) % 3)
NET = models.mlp((1, 8, 8), 3, width=4, depth=1)
TEACHER = models.mlp((1, 8, 8), 3, width=4, depth=1, seed=1)
TEN = models.mlp((1, 8, 8), 10, width=4, depth=1, seed=2)
NAN = torch.full((4, 10), float("nan"))
Y9 = torch.arange(6) % 10 + 4  # labels 4..9: outside a 3-class model

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
    ("zero epochs", lambda: training.train(NET, SPLIT, epochs=0, progress=False), ValueError, "epochs must be an integer >= 1, got 0"),
    ("negative learning rate", lambda: training.train(NET, SPLIT, lr=-1.0, progress=False), ValueError, "lr must be a finite number > 0, got -1.0"),
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
    # non-finite values
    ("NaN student logits", lambda: kd_loss(NAN, T_, 2.0), ValueError, "student_logits must be finite, got 40 NaN"),
    ("inf teacher logits", lambda: kd_loss(S, torch.full((4, 10), float("inf")), 2.0), ValueError, "teacher_logits must be finite"),
    ("NaN logits to soft_targets", lambda: soft_targets(NAN, 2.0), ValueError, "logits must be finite"),
    ("NaN logits to the hard term", lambda: hard_loss(NAN, Y), ValueError, "logits must be finite"),
    ("NaN inputs to train", lambda: training.train(NET, data.Split(X8 * float("nan"), SPLIT.y), progress=False), ValueError, "data.x must be finite"),
    ("NaN in DKD", lambda: dkd_loss(S, NAN, Y, 4.0), ValueError, "teacher_logits must be finite"),
    # labels against the model's classes
    ("train labels beyond the model's classes", lambda: training.train(NET, data.Split(X8, Y9), progress=False), ValueError, "[0, 2] for 3 classes, got values from 4 to 9"),
    ("distill labels beyond the teacher's classes", lambda: training.distill(NET, TEACHER, data.Split(X8, Y9), progress=False), ValueError, "data.y must be class indices in [0, 2] or -1 (UNLABELLED)"),
    ("evaluate labels beyond the model's classes", lambda: training.evaluate(NET, data.Split(X8, Y9)), ValueError, "data.y must be class indices in [0, 2]"),
    ("student with 10 classes under a 3-class teacher", lambda: training.distill(TEN, TEACHER, SPLIT, progress=False), ValueError, "same classes, got 10 and 3"),
    ("teacher_features: teacher as a path", lambda: training.teacher_features(NET, "teacher.pt", SPLIT), TypeError,
     "teacher must be a torch.nn.Module, got str"),
    ("teacher_features: data as a tensor", lambda: training.teacher_features(NET, TEACHER, X8), TypeError, "data"),
    ("teacher_features: 10 classes under 3", lambda: training.teacher_features(TEN, TEACHER, SPLIT), ValueError,
     "student and teacher must score the same classes, got 10 and 3"),
    ("teacher_features: labels beyond the classes", lambda: training.teacher_features(NET, TEACHER, data.Split(X8, Y9)),
     ValueError, "data.y must be class indices in [0, 2] or -1 (UNLABELLED)"),
    ("float labels to train", lambda: training.train(NET, data.Split(X8, SPLIT.y.float()), progress=False), TypeError, "data.y must be int64"),
    ("float labels to evaluate", lambda: training.evaluate(NET, data.Split(X8, SPLIT.y.float())), TypeError, "data.y must be int64"),
    ("integer images", lambda: training.train(NET, data.Split(X8.long(), SPLIT.y), progress=False), TypeError, "data.x must be a floating-point"),
    ("hard term label -2", lambda: hard_loss(S, Y - 2), ValueError, "or -1 (UNLABELLED)"),
    ("hard term float labels", lambda: hard_loss(S, Y.float()), TypeError, "labels must be int64"),
    ("DKD on a transfer row", lambda: dkd_loss(S, T_, Y - 1, 4.0), ValueError, "labels must be class indices in [0, 9]"),
    ("DKD on one class", lambda: dkd_loss(S[:, :1], T_[:, :1], Y, 4.0), ValueError, "at least 2 classes"),
    ("DKD negative beta", lambda: dkd_loss(S, T_, Y, 4.0, beta=-1.0), ValueError, "beta must be a finite number >= 0, got -1.0"),
    # settings, sizes and counts
    ("batch size 0", lambda: training.train(NET, SPLIT, batch_size=0, progress=False), ValueError, "batch_size must be an integer >= 1, got 0"),
    ("fractional epochs", lambda: training.train(NET, SPLIT, epochs=2.5, progress=False), TypeError, "epochs must be an integer >= 1, got float 2.5"),
    ("negative weight decay", lambda: training.distill(NET, TEACHER, SPLIT, weight_decay=-0.1, progress=False), ValueError, "weight_decay must be a finite number >= 0"),
    ("max-norm 0", lambda: training.train(NET, SPLIT, max_norm=0, progress=False), ValueError, "max_norm must be a finite number > 0, got 0"),
    ("max-norm a string", lambda: training.clip_unit_norms(NET, "3"), TypeError, "max_norm must be a number > 0, got str"),
    ("unknown optimizer", lambda: training.train(NET, SPLIT, optimizer="lbfgs", progress=False), ValueError, "optimizer must be one of ('adam', 'sgd'), got 'lbfgs'"),
    ("unknown schedule", lambda: training.train(NET, SPLIT, lr_schedule="linear", progress=False), ValueError, "lr_schedule must be one of"),
    ("misspelt setting", lambda: training.train(NET, SPLIT, epoch=3), TypeError, "unknown training setting(s) ['epoch']"),
    ("settings of the wrong type", lambda: training.train(NET, SPLIT, settings={"epochs": 3}), TypeError, "settings must be a kdlib.training.TrainSettings, got dict"),
    ("validation split as a tensor", lambda: training.train(NET, SPLIT, val=X8, progress=False), TypeError, "val must be a kdlib.data.Split (x, y) or a function model → number, got Tensor"),
    ("device as a number", lambda: training.train(NET, SPLIT, device=0, progress=False), TypeError, "device must be None, a string or a torch.device, got int"),
    ("evaluate batch size 0", lambda: training.evaluate(NET, SPLIT, batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    ("predict on a list", lambda: training.predict_logits(NET, [[0.0]]), TypeError, "x must be a torch.Tensor, got list"),
    ("fit without a loss function", lambda: training.fit(NET, SPLIT, "cross_entropy"), TypeError, "batch_loss must be a function"),
    ("soft loss by name", lambda: training.distill(NET, TEACHER, SPLIT, soft_loss="dkd", progress=False), TypeError, "soft_loss must be a function"),
    ("latency warm-up -1", lambda: metrics.inference_latency(NET, X8, warmup=-1), ValueError, "warmup must be an integer >= 0, got -1"),
    ("mlp width 2.5", lambda: models.mlp(64, 10, width=2.5), TypeError, "width must be an integer >= 1, got float 2.5"),
    ("negative model seed", lambda: models.mlp(64, 10, seed=-1), ValueError, "seed must be an integer >= 0, got -1"),
    ("convnet image smaller than its poolings", lambda: models.convnet(1, 10, 4, depth=3), ValueError, "image_size must be at least"),
    ("penultimate of a plain layer", lambda: models.penultimate(torch.nn.Linear(2, 2), torch.zeros(1, 2)), TypeError, "nn.Sequential"),
    # models where a model goes
    ("train a string", lambda: training.train("mlp", SPLIT, progress=False), TypeError, "model must be a torch.nn.Module, got str"),
    ("distill from a model class", lambda: training.distill(NET, torch.nn.Linear, SPLIT, progress=False), TypeError, "teacher must be a torch.nn.Module, got type"),
    ("evaluate a function", lambda: training.evaluate(lambda x: x, SPLIT), TypeError, "model must be a torch.nn.Module, got function"),
    ("count parameters of a string", lambda: metrics.parameter_count("mlp"), TypeError, "model must be a torch.nn.Module, got str"),
    ("device of a tensor", lambda: devices.device_of(X8), TypeError, "model must be a torch.nn.Module, got Tensor"),
    # plots
    ("image grid of flat vectors", lambda: plots.image_grid(torch.zeros(3, 64)), ValueError, "images must have 4 dimensions, got shape (3, 64)"),
    ("bars of a matrix", lambda: plots.soft_target_bars(torch.zeros(2, 10)), ValueError, "probabilities must have 1 dimensions"),
    ("heatmap of text", lambda: plots.similarity_heatmap("matrix"), TypeError, "matrix must be numbers"),
    ("line plot without series", lambda: plots.line_plot([1, 2], {}, "x", "y"), TypeError, "series must be a non-empty dict"),
]
