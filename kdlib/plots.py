"""Figures the lessons show. Each function returns a matplotlib Figure sized for a projector.

Tensors may come from any device: they are copied to the CPU (and detached) before plotting.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch


def as_array(values, name, dims=None):
    """A NumPy float array of ``values`` (tensors on any device, lists, arrays), optionally of ``dims`` dimensions."""
    if torch.is_tensor(values):
        values = values.detach().cpu()
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numbers (a tensor, array or list), got {type(values).__name__}") from error
    if dims is not None and array.ndim != dims:
        raise ValueError(f"{name} must have {dims} dimensions, got shape {array.shape}")
    return array


def soft_target_bars(probabilities, temperature=None, ax=None, highlight=None):
    """Bar chart of one example's class probabilities (10 bars for digits); log scale optional."""
    probabilities = as_array(probabilities, "probabilities", dims=1)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
    colors = ["tab:orange" if k == highlight else "tab:blue" for k in range(len(probabilities))]
    ax.bar(range(len(probabilities)), probabilities, color=colors)
    ax.set_xticks(range(len(probabilities)))
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    if temperature is not None:
        ax.set_title(f"soft targets at T = {temperature:g}")
    fig.tight_layout()
    return fig


def similarity_heatmap(matrix, title="", xlabel="class the teacher also suggests", ylabel="true class"):
    """Heatmap of a (classes, classes) matrix with the values written in each cell."""
    matrix = as_array(matrix, "matrix", dims=2)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(matrix, cmap="viridis")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="white" if value < matrix.max() / 2 else "black")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def line_plot(x, series, xlabel, ylabel, title="", logx=False):
    """One line per entry of ``series`` (name → values, or name → (means, stds) for error bars)."""
    if not isinstance(series, dict) or not series:
        raise TypeError(f"series must be a non-empty dict of name → values, got {type(series).__name__}")
    x = as_array(x, "x", dims=1)
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        if isinstance(values, tuple):
            ax.errorbar(x, as_array(values[0], name), yerr=as_array(values[1], name), marker="o", capsize=3, label=name)
        else:
            ax.plot(x, as_array(values, name), marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


def image_grid(images, titles=None, columns=10):
    """Images (N, 1, H, W) in a grid, optional title per image."""
    images = as_array(images, "images", dims=4)
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k, 0], cmap="gray_r")
            if titles is not None:
                ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig
