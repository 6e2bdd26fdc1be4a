"""`mlp`: a multi-layer perceptron over a vector: a table's numbers, categories (one-hot or
embedded) and free text (a bag of hashed n-grams), or an image's pixels as they come (flat).

With `ensemble: k` (k > 1) it is k MLPs that share their hidden layers, trained at once
(TabM-mini: Gorishniy et al. 2024, "TabM: Advancing Tabular Deep Learning with
Parameter-Efficient Ensembling"): member i multiplies the input vector by its own vector r_i
(initialised to random +-1 signs, then learned), runs the shared hidden layers and its own output
layer. In training the network returns every member's output ([B, k, size]) and each member is
fitted on its own loss (danlu.train.loop averages them); in evaluation, export and serving it
returns one output: the log of the members' mean class probabilities (a classification head
applies softmax to it and gets that mean), or the mean of their values (regression)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from danlu.models.base import WIDTH_FAMILY_VARIANTS, Family, input_layer, models
from danlu.models.config import ModelSection

__all__ = ["STARTER_K", "MLPConfig", "MLPFamily"]

# Members of the starter recipe's ensemble (TabM's k), and the rows from which it uses 8.
STARTER_K = 32
LARGE_ROWS = 20_000


class MLPConfig(ModelSection):
    arch: Literal["mlp"] = "mlp"
    # Two hidden layers of 128 fit every bundled tabular set in seconds on 2 cores.
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 128]
    dropout: float = Field(0.1, ge=0, lt=1)
    # k > 1: k members sharing the hidden layers (TabM-mini, the module docstring); 1: one MLP.
    ensemble: int = Field(1, ge=1, le=128)


@models.register("mlp")
class MLPFamily(Family):
    config = MLPConfig
    # image: its pixels as a flat vector; text: a bag of hashed n-grams (features/text.py)
    accepts = ("number", "category", "binary", "image", "text")

    def bind(self, cfg, features):
        for f in features:  # a text column beside the others: the hashing encoder
            if hasattr(f, "bind_hashing") and not f.hashed:
                f.bind_hashing()

    def build(self, cfg, features, head):
        """[the features' learned parts (a large category's embedding)], then Linear -> ReLU ->
        Dropout per hidden width, then a linear layer to the head."""
        from torch import nn

        embed, width = input_layer(features)
        if cfg.ensemble > 1:
            from danlu.models.members import MemberMLP

            return MemberMLP(embed, width, cfg.hidden, head.size, cfg.ensemble, cfg.dropout,
                             head.task == "classification")
        layers: list[nn.Module] = [embed] if embed is not None else []
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, head.size))
        return nn.Sequential(*layers)

    def starter(self, features, rows):
        """Members sharing two hidden layers about twice as wide as the input (32..256), dropout
        0.3; epochs and batch size from the number of rows (small sets need more passes and
        smaller batches). Below 20,000 rows 32 members (TabM's k); from 20,000 rows 8 members,
        at least 128 wide, batches of 256: the variance an ensemble removes shrinks with the
        data, its cost does not. Chosen on public tables against a GBDT (benchmarks/tables.py):
        mlc_churn 0.929 -> 0.954 with 32 members (GBDT 0.955); diamonds (cut) 0.783 with 32
        members 64 wide -> 0.795 with 8 members 128 wide (GBDT 0.795)."""
        import math

        columns = input_layer(features)[1]
        large = rows >= LARGE_ROWS
        width = int(min(256, max(128 if large else 32,
                                 2 ** math.ceil(math.log2(2 * max(columns, 1))))))
        # early stopping (patience 20) ends most runs well before these
        epochs = 100 if rows < 1_000 else 60 if rows < 100_000 else 30
        batch = 32 if rows < 2_000 else 64 if not large else 256
        return ({"arch": "mlp", "hidden": [width, width], "dropout": 0.3,
                 "ensemble": 8 if large else STARTER_K},
                {"epochs": epochs, "batch_size": batch, "optimizer": {"name": "adam", "lr": 0.001}})

    def tune_space(self, model, train, rows):
        """Around the starter: learning rate (x/10 .. x10, log), width (half, as is, double; two
        or three layers), dropout, weight decay (AdamW) and batch size (half, as is, double)."""
        w, batch = model["hidden"][0], train["batch_size"]
        lr = train["optimizer"]["lr"]
        widths = [[max(16, w // 2)] * 2, [w, w], [2 * w, 2 * w], [w, w, w]]
        return {"train.optimizer.lr": {"log_float": [lr / 10, lr * 10]},
                "train.optimizer.name": {"choice": ["adam", "adamw"]},
                "train.optimizer.weight_decay": {"log_float": [1e-6, 1e-2],
                                                 "when": {"train.optimizer.name": ["adamw"]}},
                "train.batch_size": {"choice": [max(16, batch // 2), batch, batch * 2]},
                "model.hidden": {"choice": widths},
                "model.dropout": {"float": [0.0, 0.5]}}

    def compress_variants(self):
        return [dict(v) for v in WIDTH_FAMILY_VARIANTS]

    def scaled(self, cfg, width):
        return cfg.model_copy(update={"hidden": [max(1, round(h * width)) for h in cfg.hidden]})

    def widths(self, net, cfg):
        from torch import nn

        if cfg.ensemble > 1:  # the members' output layers are one tensor Torch-Pruning can't cut
            return None
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        return cfg.model_copy(update={"hidden": [m.out_features for m in linears[:-1]]})
