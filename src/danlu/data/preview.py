"""`danlu data preview`: a PNG grid of augmented training samples, what the model will see."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from danlu.errors import DataError, RecipeError
from danlu.runs import atomic_write

__all__ = ["preview"]


def preview(recipe, out: Path, samples: int = 8, variants: int = 7) -> Path:
    """Rows: `samples` training images; columns: the original, then `variants` augmentations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from danlu.data.augment import Augmenter
    from danlu.data.features import build, resolve_features
    from danlu.data.prepare import chunk_values
    from danlu.data.readers import open_reader

    cfg, pre = recipe.data, recipe.preprocess
    reader = open_reader(cfg.source, cfg.target.column, cfg.chunk_rows, cfg.drop)
    images = [f for f in build(resolve_features(cfg, reader), reader, pre) if f.image_shape]
    if not images:
        raise RecipeError("data.source", got=cfg.source, expected="image data for a preview grid",
                          hint="declare the pixel columns: data.features: {pixels: {type: image, "
                               "shape: [C, H, W], columns: '*'}}")
    if not pre.augment:
        raise RecipeError("preprocess.augment", got=[], expected="at least one augmentation to preview")
    image = images[0]
    chunk = next(reader.chunks({c: image.parse for c in image.columns if c in reader.columns}))
    pixels = chunk_values(chunk, image)
    ok = np.isfinite(pixels).all(axis=1) & (chunk.labels >= 0)
    x, y = pixels[ok][:samples], chunk.labels[ok][:samples]
    if len(x) == 0:
        raise DataError("no valid rows in the first chunk to preview", source=cfg.source)
    shape = image.image_shape
    n_classes = max(len(reader.label_values), int(y.max()) + 1)
    aug = Augmenter(pre.augment, torch.zeros(x.shape[1]), torch.ones(x.shape[1]), n_classes, shape,
                    (float(pixels[ok].min()), float(pixels[ok].max())), recipe.seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    cols = [x] + [aug(xt, torch.as_tensor(y))[0].numpy() for _ in range(variants)]
    fig, axes = plt.subplots(len(x), variants + 1, figsize=(1.2 * (variants + 1), 1.2 * len(x)),
                             squeeze=False)
    lo, hi = float(x.min()), float(x.max())
    for i in range(len(x)):
        for j, col in enumerate(cols):
            img = col[i].reshape(shape)
            img = img[0] if shape[0] == 1 else np.clip((img.transpose(1, 2, 0) - lo) / (hi - lo), 0, 1)
            ax = axes[i][j]
            ax.imshow(img, cmap="gray" if shape[0] == 1 else None, vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"aug {j}", fontsize=8)
    steps = ", ".join(s.name for s in pre.augment)
    fig.suptitle(f"{recipe.name}: {steps}", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(Path(out), buf.getvalue())
