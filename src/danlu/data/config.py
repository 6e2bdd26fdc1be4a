"""Recipe sections `data` and `preprocess` (pydantic only, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

__all__ = ["AugmentStep", "CleanConfig", "DataConfig", "FeatureEntry", "NearDuplicateConfig",
           "OutlierConfig", "PreprocessConfig", "SplitConfig", "TargetConfig", "upgrade_v1"]



class Section(BaseModel):
    """Every recipe section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
    # 15% / 20% leaves digits ~1,150 training rows: enough for the CNN, and a test split of
    # ~360 rows gives an accuracy CI about +-1.5 pt wide.
    val: float = Field(0.15, gt=0, lt=1, description="fraction of all rows for validation")
    test: float = Field(0.2, gt=0, lt=1, description="fraction of all rows for the test split")
    # Stratified keeps class shares equal across splits; it matters for small or skewed sets.
    stratify: bool = True

    @model_validator(mode="after")
    def _room_for_training(self) -> SplitConfig:
        if self.val + self.test >= 0.9:
            raise ValueError(f"val + test = {self.val + self.test:.2f} leaves under 10% to train;"
                             " lower them, e.g. val: 0.15, test: 0.2")
        return self


class FeatureEntry(Section):
    """One entry of data.features: a column (or a reader's column group) and its feature type."""

    # A registered feature type: number, category, binary, text, image, or a plug-in's.
    type: str
    # The source columns it reads: null = the column (or column group, e.g. sklearn:digits'
    # `pixels`) named like the entry; "*" = every column that is not the target or dropped.
    columns: list[str] | Literal["*"] | None = None
    # image: [channels, height, width] of the flat pixel rows (image sources know their own).
    shape: list[int] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_type(cls, v: object) -> object:
        return {"type": v} if isinstance(v, str) else v  # `age: number` means {type: number}

    @field_validator("type")
    @classmethod
    def _registered(cls, v: str) -> str:
        from danlu.features import features

        if v not in features:
            from danlu.registry import closest

            near = closest(v, features.names())
            raise ValueError(f"a feature type: one of {', '.join(features.names())}"
                             + (f" (did you mean {near!r}?)" if near else ""))
        return v

    @field_validator("shape")
    @classmethod
    def _chw(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or min(v) < 1):
            raise ValueError(f"expected [channels, height, width] of positive ints, got {v}")
        return v


class TargetConfig(Section):
    """What the model predicts: a column (sklearn sets, image folders and corpora know their
    own) and the head that predicts it."""

    column: str | None = None
    # category = classification (labels and probabilities); number = regression (a value).
    head: str = "category"
    # number head only: mse (the mean) or huber (robust to a few wild targets; delta = 1 std of
    # the training targets). None = the head's default (mse).
    loss: Literal["mse", "huber"] | None = None
    # number head only: log = learn log(1 + y) (a skewed positive target: prices, counts), the
    # exported graph returns exp(.) - 1, metrics are in the target's units. None = none.
    transform: Literal["none", "log"] | None = None

    def options(self) -> dict[str, object]:
        """The head's options as the recipe gives them."""
        return {"loss": self.loss, "transform": self.transform}

    @model_validator(mode="before")
    @classmethod
    def _bare_column(cls, v: object) -> object:
        return {"column": v} if isinstance(v, str) else v  # `target: label`

    @field_validator("head")
    @classmethod
    def _registered(cls, v: str) -> str:
        from danlu.features import heads

        if v not in heads:
            raise ValueError(f"a head: one of {', '.join(heads.names())}")
        return v


class DataConfig(Section):
    # sklearn:NAME uses a set bundled with scikit-learn (no download); csv:/tsv:/parquet: read a
    # file (csv: the delimiter is sniffed; .gz/.zst files are decompressed while read).
    source: str = Field("sklearn:digits", description="sklearn:NAME, csv:PATH, tsv:PATH, parquet:PATH, "
                        "folder:PATH (one sub-folder of images per class), idx:PATH (MNIST-style IDX "
                        "images), jsonl:PATH (text) or "
                        "corpus:bbc_news (text)")
    # The label column of a csv/parquet file (field of a jsonl line, default "label") and the
    # head predicting it; sklearn sets and image folders know their own target.
    # (default_factory: a default built at import would look up the heads registry, numpy)
    target: TargetConfig = Field(default_factory=TargetConfig)
    # Column -> feature type (DESIGN.md §3a). Absent: the source's own (images, corpora) or
    # inferred from the data (docs/data.md), and written into the run's resolved recipe.
    features: dict[str, FeatureEntry] | None = None
    # Columns of a csv/parquet file that are not features (IDs, constants); `danlu init`
    # proposes them.
    drop: list[str] = []
    # Rows per chunk when streaming csv/parquet: ~100k rows x 20 float64 columns is 16 MB,
    # small next to the interpreter, large enough that per-chunk overhead is negligible.
    chunk_rows: int = Field(100_000, ge=1000)
    split: SplitConfig = SplitConfig()

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        """SCHEME:REST with a registered scheme (danlu.data.readers), REST one it knows."""
        from danlu.data.readers import schemes

        scheme, sep, rest = v.partition(":")
        if not sep or not rest or scheme not in schemes:
            raise ValueError(f"SCHEME:PATH or SCHEME:NAME with a scheme of {', '.join(schemes)} "
                             "(e.g. csv:data.csv, sklearn:digits)")
        names = getattr(schemes[scheme], "names", None)  # a scheme of bundled sets
        if names is not None and rest not in names:
            raise ValueError(f"{scheme} {rest!r} is not bundled; one of {', '.join(names)}")
        return v

    @model_validator(mode="after")
    def _target_for_files(self) -> DataConfig:
        from danlu.data.readers import schemes

        opener = schemes[self.source.partition(":")[0]]
        if not self.target.column and getattr(opener, "default_target", None):
            self.target = TargetConfig(column=opener.default_target, head=self.target.head)
        if not self.target.column and getattr(opener, "needs_target", False):
            raise ValueError(f"data.target must name the label column of a "
                             f"{self.source.partition(':')[0]} source")
        return self


class NearDuplicateConfig(Section):
    # On by default: finding near duplicates is cheap (64-bit hashes, band lookups) and they
    # are what leaks between train and test; images use an average hash, text MinHash LSH.
    enabled: bool = True
    # Images: largest Hamming distance between 64-bit average hashes that still counts as a
    # near duplicate. 0 = the same 8x8 thumbnail after thresholding at its mean; 2-5 is usual
    # for photos, but tiny images (8x8 digits) need 0 or distinct digits start to match.
    max_distance: int = Field(0, ge=0, le=16)
    # Images: a hash match is confirmed only if the 8x8 grey thumbnails differ by at most this
    # fraction of the pixel range, on average. Measured on sklearn digits: the 48 pairs with
    # equal hashes differ by a median 1.0 grey level of 16 per pixel (as much as ordinary
    # nearest neighbours), so the hash alone calls different handwriting "duplicate".
    max_pixel_diff: float = Field(0.02, ge=0, le=1)
    # Text: Jaccard similarity of word 3-gram sets above which two texts are near duplicates
    # (MinHash LSH estimate, 128 permutations).
    threshold: float = Field(0.8, gt=0, le=1)
    # Off: near duplicates inside one split are harmless (like augmentation) and are only
    # reported; across splits they are leakage (see `leakage`). On: later copies are dropped.
    drop: bool = False


class OutlierConfig(Section):
    # Off by default: on real data "outliers" are often the interesting rows; opt in.
    method: Literal["none", "zscore", "iqr"] = "none"
    # zscore: |x - mean| / std above this; 4 flags ~6e-5 of a normal sample.
    # iqr: outside [q1 - k IQR, q3 + k IQR]; Tukey's fences use k = 1.5 (3 = "far out").
    threshold: float = Field(4.0, gt=0)
    # flag only counts them in cleaning.json; drop removes them from the training split
    # (statistics are fitted on train; val/test keep every row, so metrics stay honest).
    action: Literal["flag", "drop"] = "flag"


class CleanConfig(Section):
    # drop removes an invalid row and counts it by reason; fail stops at the first one with
    # its row number and column (for data that must be clean).
    invalid: Literal["drop", "fail"] = "drop"
    # Missing number cells ("", NA, N/A, NaN, null, ?; and cells that are not numbers):
    # impute keeps the row (the training median replaces them in the graph, plus a 0/1 missing
    # indicator per column that had any), counted per column in cleaning.json `imputed`;
    # drop removes such rows as invalid (nan_or_inf, wrong_type). A missing target always
    # removes its row; +-inf is always invalid. Missing categories are the `__missing__` value.
    missing: Literal["impute", "drop"] = "impute"
    # Declared value ranges, column -> [min, max] (null = open); "*" applies to every feature.
    ranges: dict[str, tuple[float | None, float | None]] = {}
    # Exact duplicates (same features) are removed before the split; the same features with
    # different labels are reported as label noise and removed, not as duplicates.
    duplicates: bool = True
    near_duplicates: NearDuplicateConfig = NearDuplicateConfig()
    # Rows of val/test that duplicate (or nearly duplicate) a training row, or a test row
    # that duplicates a val row, are removed from the evaluation split: they inflate metrics.
    leakage: bool = True
    outliers: OutlierConfig = OutlierConfig()


class _Aug(Section):
    # Each augmentation fires per sample with probability p.
    p: float = Field(0.5, ge=0, le=1)


class RotateAug(_Aug):
    degrees: float = Field(10.0, gt=0, le=180)  # uniform in [-degrees, degrees]


class TranslateAug(_Aug):
    fraction: float = Field(0.1, gt=0, lt=1)  # shift up to this fraction of width/height


class ScaleAug(_Aug):
    range: tuple[float, float] = (0.9, 1.1)  # zoom factor range


class ResizedCropAug(_Aug):
    scale: tuple[float, float] = (0.8, 1.0)  # area fraction of the crop, resized back


class HFlipAug(_Aug):
    pass  # never for digits or text-like images: a flipped 2 is not a 2


class JitterAug(_Aug):
    brightness: float = Field(0.1, ge=0)  # raw-scale factor range [1 - b, 1 + b]
    contrast: float = Field(0.1, ge=0)


class EraseAug(_Aug):
    scale: tuple[float, float] = (0.02, 0.1)  # area fraction erased (Zhong et al. 2017)


class NoiseAug(_Aug):
    std: float = Field(0.05, gt=0)  # Gaussian noise in units of each feature's std


class MixupAug(_Aug):
    alpha: float = Field(0.2, gt=0)  # Beta(alpha, alpha) mixing weight (Zhang et al. 2018)


AUGMENTATIONS = {"rotate": RotateAug, "translate": TranslateAug, "scale": ScaleAug,
                 "resized_crop": ResizedCropAug, "hflip": HFlipAug, "jitter": JitterAug,
                 "erase": EraseAug, "noise": NoiseAug, "mixup": MixupAug}
IMAGE_AUGMENTATIONS = ("rotate", "translate", "scale", "resized_crop", "hflip", "jitter", "erase")


class AugmentStep(Section):
    """One `{name: {params}}` item of preprocess.augment; exactly one name is set."""

    rotate: RotateAug | None = None
    translate: TranslateAug | None = None
    scale: ScaleAug | None = None
    resized_crop: ResizedCropAug | None = None
    hflip: HFlipAug | None = None
    jitter: JitterAug | None = None
    erase: EraseAug | None = None
    noise: NoiseAug | None = None
    mixup: MixupAug | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, v: object) -> object:
        if isinstance(v, str):  # `- hflip` means hflip with its defaults
            v = {v: {}}
        if isinstance(v, dict):
            v = {k: ({} if p is None else p) for k, p in v.items() if p is not None or len(v) == 1}
            for k in v:
                if k not in AUGMENTATIONS:
                    from danlu.registry import closest

                    near = closest(str(k), list(AUGMENTATIONS))
                    raise ValueError(f"{k!r} is not an augmentation"
                                     + (f"; did you mean {near!r}?" if near else "")
                                     + f" (one of: {', '.join(AUGMENTATIONS)})")
            if len(v) != 1:
                raise ValueError(f"each augment item names one augmentation, got {sorted(v)}; "
                                 f"write one list item per step, e.g. - rotate: {{degrees: 10}}")
        return v

    @property
    def name(self) -> str:
        return next(k for k in AUGMENTATIONS if getattr(self, k) is not None)

    @property
    def params(self) -> _Aug:
        return getattr(self, self.name)

    @model_serializer(mode="wrap")
    def _only_the_set_one(self, handler):  # the resolved recipe shows `- rotate: {...}`
        return {k: v for k, v in handler(self).items() if v is not None}


class PreprocessConfig(Section):
    # z-score is the safe default for gradient training; fitted on the training split only
    # and baked into the exported ONNX graph, so serving sees the same transformation.
    # robust = (x - median) / IQR, for heavy-tailed features.
    normalize: Literal["zscore", "minmax", "robust", "none"] = "zscore"
    # feature: one shift/scale per column. channel: pooled over each image channel's pixels
    # (needs image data), still written out as one shift/scale per feature for the graph.
    per: Literal["feature", "channel"] = "feature"
    # Piecewise-linear encoding of each number column in this many quantile bins of the
    # training split (Gorishniy et al. 2022), beside its normalized value; 0 = off. Lets an MLP
    # cut a number at thresholds as trees do; inside the exported graph.
    bins: int = Field(0, ge=0, le=64)
    clean: CleanConfig = CleanConfig()
    # Applied in order, on the fly, to training batches only (seeded). Empty = none.
    augment: list[AugmentStep] = []


def upgrade_v1(data: dict) -> dict:
    """A version-1 `data` section as version 2: `text_field` and `image_shape` become
    `features` entries (the keys that declared a text column and flat image rows)."""
    data = dict(data)
    text_field, shape = data.pop("text_field", None), data.pop("image_shape", None)
    if data.get("features") is None:
        if text_field:
            data["features"] = {text_field: "text"}
        elif shape is not None:
            data["features"] = {"pixels": {"type": "image", "shape": shape, "columns": "*"}}
    return data
