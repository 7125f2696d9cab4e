"""Pictures of a run: sample grids tiled with numpy and written with Pillow
(cheap enough for every epoch at GPU speed), the progress GIF, and the loss
and timing plots, drawn with matplotlib once, at the end of a run."""
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw, ImageFont

from common.atomic import atomic_write

GAP = 128  # grey between tiles, distinct from both black and white digits
LABEL_HEIGHT = 16  # pixels of the text strip above each row of labelled_rows


def to_uint8(images):
    """Grey levels in [0, 1] -> uint8 0..255 (0 = black): the 8-bit images
    a picture or an export holds, and the ones the metrics score."""
    return np.round(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def to_uint8_tensor(images):
    """to_uint8 as TensorFlow operations (an export's serving function):
    the same rounding, half to even."""
    import tensorflow as tf

    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255),
                   tf.uint8)


def grid(images, cols, scale=2, pad=2):
    """Tile images [n, h, w] (grey) or [n, h, w, 3] (colour: Stacked MNIST's
    three digits) with values in [0, 1] into one uint8 picture of `cols`
    columns, `pad` grey pixels between tiles, each pixel repeated `scale`
    times in both directions."""
    pixels = to_uint8(images)
    n, h, w = pixels.shape[:3]
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *pixels.shape[3:]), GAP,
                     np.uint8)
    for i, image in enumerate(pixels):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        canvas[top:top + h, left:left + w] = image
    return canvas.repeat(scale, axis=0).repeat(scale, axis=1)


def labelled_rows(rows, scale=2, pad=2):
    """One picture of titled rows: for each (label, images [n, h, w] in
    [0, 1]), a strip with the label in white on black, then the images side
    by side as in `grid`."""
    strips = []
    for label, row in rows:
        tiles = grid(row, cols=len(row), scale=scale, pad=pad)
        strips += [_label(label, tiles, pad * scale), tiles]
    return np.concatenate(strips)


def titled(picture, title, margin=4):
    """`picture` (uint8) under a strip with `title`, as labelled_rows' labels."""
    return np.concatenate([_label(title, picture, margin), picture])


def _label(text, below, margin):
    """A black strip as wide as the picture `below`, `text` in white on it."""
    strip = Image.new("L", (below.shape[1], LABEL_HEIGHT), 0)
    ImageDraw.Draw(strip).text((margin, 1), text, fill=255, font=ImageFont.load_default(size=12))
    strip = np.asarray(strip)
    return np.repeat(strip[..., None], 3, axis=2) if below.ndim == 3 else strip


def save_png(picture, path):
    with atomic_write(path) as f:
        Image.fromarray(picture).save(f, format="PNG")


def save_gif(paths, path, max_frames=100, frame_ms=100, last_frame_ms=2000):
    """An animated GIF of the PNGs at `paths` (in order), thinned evenly to at
    most `max_frames` frames, first and last always kept: a 2000-epoch run
    makes a 10-second GIF rather than a 3-minute one."""
    paths = list(paths)
    if not paths:
        return
    keep = sorted({round(i) for i in np.linspace(0, len(paths) - 1, min(max_frames, len(paths)))})
    frames = [Image.open(paths[i]) for i in keep]
    frames = [frame.convert("L" if frame.mode in ("L", "1") else "RGB") for frame in frames]
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    with atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


def plot_history(history, panels, path):
    """One panel per entry of `panels` (title -> history columns), each
    column a line over epochs; epochs where a column was not measured (NaN)
    are skipped."""
    figure = Figure(figsize=(7, 3 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, columns) in zip(axes, panels.items()):
        for column in columns:
            epochs, values = _series(history, column)
            ax.plot(epochs, values, label=column, marker="." if len(epochs) < 30 else None)
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    save_figure(figure, path)


def plot_timing(history, path):
    """Seconds per epoch over the run, with its median."""
    plot_seconds({"seconds": history}, path, median=True)


def plot_seconds(histories, path, median=False):
    """Seconds per epoch over each run of `histories` ({label: history
    rows}); `median`: a single run's median too."""
    figure = Figure(figsize=(7, 3), layout="constrained")
    ax = figure.subplots()
    for label, history in histories.items():
        epochs, seconds = _series(history, "seconds")
        ax.plot(epochs, seconds, marker="." if len(epochs) < 30 else None, label=label)
    if median:
        middle = float(np.median(seconds))
        ax.axhline(middle, color="grey", linestyle="--", label=f"median {middle:.3g} s")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("seconds per epoch")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(figure, path)


def plot_latent_scatter(codes, labels, path):
    """2-D latent codes of test images, coloured by their digit."""
    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5,
                        s=2, alpha=0.6)
    figure.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title("test images: mean of q(z|x)")
    save_figure(figure, path)


def plot_label_histograms(histograms, path):
    """Grouped bars: for each name, the share of its images the classifier
    puts in each digit class (report 003's label predictor), with the
    uniform 10% marked."""
    figure = Figure(figsize=(8, 3.5), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / max(len(histograms), 1)
    for i, (name, shares) in enumerate(histograms.items()):
        ax.bar(np.arange(10) + (i - (len(histograms) - 1) / 2) * width, 100 * np.asarray(shares),
               width, label=name)
    ax.axhline(10, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(10))
    ax.set_xlabel("digit the evaluation classifier predicts")
    ax.set_ylabel("% of generated images")
    ax.legend()
    save_figure(figure, path)


def plot_band(ax, series, label, x=None):
    """On `ax`, runs that differ only by seed as one curve: the mean of
    `series` (per run, {epoch: value}) at the epochs every run has, and with
    several runs their range as a band; against the epochs, or `x(epochs)`."""
    epochs = sorted(set.intersection(*(set(s) for s in series)))
    if not epochs:
        return
    values = np.array([[s[e] for e in epochs] for s in series])
    at = epochs if x is None else x(epochs)
    line, = ax.plot(at, values.mean(axis=0), marker=".", label=label)
    if len(series) > 1:
        ax.fill_between(at, values.min(axis=0), values.max(axis=0), color=line.get_color(),
                        alpha=0.2)


def plot_bands(panels, path, xlabel="epoch"):
    """A figure of `panels`, {title: [plot_band's (series, label[, x]) of
    each curve]}, in rows of three, the first panel's legend naming them."""
    rows, columns = -(-len(panels) // 3), min(len(panels), 3)
    figure = Figure(figsize=(4 * columns, 3 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, curves) in zip(axes, panels.items()):
        for curve in curves:
            plot_band(ax, *curve)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        if xlabel == "epoch":  # whole epochs: no tick at 1.5
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:  # the last row's empty places
        ax.axis("off")
    axes[0].legend(fontsize=8)
    save_figure(figure, path)


def plot_pictures(rows, path, size=3):
    """A figure of PNG files side by side: `rows` of (path, title), a path
    that does not exist left blank; `size` inches a picture."""
    figure = Figure(figsize=(size * len(rows[0]), size * len(rows)), layout="constrained")
    for cells, axes in zip(rows, figure.subplots(len(rows), len(rows[0]), squeeze=False)):
        for ax, (picture, title) in zip(axes, cells):
            if picture.exists():
                with Image.open(picture) as png:  # grey, or Stacked MNIST's colour
                    ax.imshow(np.asarray(png.convert("RGB")), interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    save_figure(figure, path)


def _series(history, column):
    points = [(row["epoch"], row[column]) for row in history
              if not math.isnan(row.get(column, math.nan))]
    return [e for e, _ in points], [v for _, v in points]


def save_figure(figure, path):
    with atomic_write(path) as f:
        figure.savefig(f, format="png", dpi=100)


def pictures(images):
    """Images [n, 28, 28, channels] -> [n, 28, 28] when grey: the shape the
    pictures, the metrics and the exported samples take."""
    return images[..., 0] if images.shape[-1] == 1 else images
