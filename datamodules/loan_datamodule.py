"""The `LightningDataModule`: file -> schema -> split -> fitted preprocessor -> tensors.

Everything learned from data (schema, preprocessor, training positive rate) is kept in
`state_dict()`, which Lightning stores in every checkpoint. `predict` therefore needs only
the checkpoint and the unlabelled file, never the training file.

Lightning calls `setup()` before it restores a checkpoint's `load_state_dict()`, so
`setup()` only reads and splits; encoding into tensors happens lazily in the
dataloader methods, after any checkpoint state is in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from contracts.choices import check_choice, check_range
from contracts.errors import ConfigurationError, DataValidationError
from contracts.features import (
    FEW_TRAINING_CASES,
    SMALL_TRAINING_ROWS,
    FeatureSpec,
    Split,
    TabularTensors,
    is_wide,
    rarer_class_rows,
)
from contracts.wording import counted
from datamodules import synthetic
from datamodules.coded_fields import generate_coded_fields, generate_weak_coded_fields
from datamodules.held_out import (
    HeldOutRows,
    held_out_rows,
    require_same_held_out,
    require_same_rows,
)
from datamodules.io import ReadOptions, read_table, release_reader_memory, resolve_data_path
from datamodules.noise import append_noise_columns, noise_column_names
from datamodules.preprocessing import (
    Scaling,
    TabularPreprocessor,
    TargetStatistics,
    ValueStatistics,
    level_vocabulary,
)
from datamodules.sampling import check_sample_options, sample_labelled_rows
from datamodules.schema import (
    Label,
    TableSchema,
    build_schema,
    encode_target,
    require_columns,
    require_trained_columns,
    same_label,
)
from datamodules.splits import SplitIndices, bagging_folds, check_split_shares, protocol_split
from datamodules.tensor_data import Batch, batch_loader
from datamodules.validation import check_training_columns, numeric_block, share_numeric_columns
from risk.stability import BinnedDistribution

# `folds: auto`: a bag of BAGGING_FOLDS networks where the training split holds fewer than
# FEW_TRAINING_CASES rows of its rarer class, one network from there. One network's fit
# varies most where the positives are few, and averaging five cuts that variance: on the
# 14 scoreboard sets with at most 1,414 training defaulters the bag gained 0.004-0.031
# (mean 0.010); on the 5 with 1,830 or more, 0.001-0.005 (mean 0.003) for five times a
# fit of 6-35 s (docs/experiments/2026-12-03-bagging.md). A categorical of at least
# WIDE_CATEGORICAL_LEVELS training levels bags too: its levels' rates and embeddings vary
# from fit to fit, and on the two wide-categorical stand-ins the bag gained 0.0088 and
# 0.0066 for four times a fit of 10-11 s (docs/experiments/2026-12-03-few-defaulters-ensemble.md).
BAGGING_FOLDS = 5
# Where its networks would train on fewer than SMALL_TRAINING_ROWS rows, a bag takes
# SMALL_DATA_BAGGING_FOLDS (TabArena's count): each network trains on 7/8 of the non-test
# rows rather than 4/5, which pays where every row counts. On the nine such sets of the
# scoreboard it gained on eight (mean +0.0025; credit_risk@1k, the worst case, +0.0031 on
# 5 seeds of 5) and lost inside the noise on taiwan@3k (-0.0025), for 1.3-2.1 times the
# fit (docs/experiments/2026-12-05-eight-folds-on-small-sets.md).
SMALL_DATA_BAGGING_FOLDS = 8
log = logging.getLogger(__name__)

SyntheticData = Literal["loan_book", "coded_fields", "coded_fields_weak"]
_SYNTHETIC_FILES: dict[str, Callable[[int, int], synthetic.SyntheticLoanBook]] = {
    "loan_book": synthetic.generate_loan_book,
    "coded_fields": generate_coded_fields,
    "coded_fields_weak": generate_weak_coded_fields,
}
_SYNTHETIC_ID_COLUMNS = {"loan_book": synthetic.ID_COLUMN}
# The target's label meaning "defaulted" unless a config names another.
DEFAULT_POSITIVE_LABEL = 1


def _read_options(options: ReadOptions | dict[str, Any] | None) -> ReadOptions | None:
    """The command line builds `ReadOptions`; Python callers may pass the same settings as
    a dict, as a config writes them (`{"sep": ";"}`)."""
    if not isinstance(options, dict):
        return options
    known = {field.name for field in fields(ReadOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(
            f"read_options: unknown settings {unknown}; the settings are {sorted(known)}"
        )
    for name in ("na_values", "names"):  # a string would be read as its characters
        value = options.get(name)
        if value is not None and not isinstance(value, list | tuple):
            raise ConfigurationError(f"read_options: {name} is a list, got {value!r}")
    return ReadOptions(**options)


@dataclass(frozen=True)
class LabelledTable:
    """Raw labelled rows. numeric: the schema's numeric columns as float32, NaN for missing,
    read-only; the frame's floating-point numeric columns are views of it."""

    frame: pd.DataFrame
    numeric: np.ndarray
    targets: np.ndarray
    split: SplitIndices
    default_probability: np.ndarray | None
    held_out: HeldOutRows


@dataclass(frozen=True)
class PredictInputs:
    """The unlabelled file as model inputs, and each feature's rows counted on its training
    bins (for the population stability report). Shape: feature_counts one (n_bins,) each."""

    tensors: TabularTensors
    feature_counts: dict[str, np.ndarray]


class LoanDataModule(L.LightningDataModule):
    """Tabular loan data, from a CSV/CSV.gz/Parquet file or an embedded synthetic file.

    The defaults are the recommended preprocessing (quantile-normal numerics with value
    counts); a dataset's config gives only facts about its file. It implements
    `contracts.features.FittedTabularData`, the model's view of it.

    Args:
        path: labelled file, absolute or relative to `data_dir`; None trains on the
            `synthetic` file, which needs no download.
        synthetic: "loan_book" (`datamodules/synthetic.py`, the default data), or one of the
            robustness suite's files of 32 coded fields (`datamodules/coded_fields.py`):
            "coded_fields" (strong signal, much of it in combinations of categoricals),
            "coded_fields_weak" (weak signal, mostly noise columns);
            `synthetic_rows` rows drawn with `synthetic_seed`.
        target: target column; positive_label: its value meaning "defaulted" (None: a
            restored checkpoint's, else 1).
        id_column: copied into prediction files, never used as a feature; the synthetic
            loan book's `loan_id` is its id column unless another is named.
        drop_columns: columns ignored entirely.
        categorical_columns: None infers them (strings, booleans, integer columns with at
            most `max_inferred_levels` values); a list fixes them.
        read_options: separator, header, names, index column, missing-value tokens.
        data_dir: folder for relative paths (default `$LOAN_DATA_DIR`, else `./data`).
        seed: split seed (the benchmark protocol's `random_state`), and the seed of
            the row sample below.
        sample_rows, sample_positive_rate: train on a deterministic sample of the labelled
            rows, drawn before the split: `sample_rows` rows (stratified by default) and/or
            a default rate of `sample_positive_rate` (`datamodules/sampling.py`). The
            benchmark's robustness suite derives smaller and rarer-default datasets so.
        noise_columns: append this many columns drawn independently of everything
            (numeric and categorical, `datamodules/noise.py`), after the sample: a placebo
            check of how much uninformative columns cost a model.
        folds: 1 splits the protocol's way (train, validation, test). K > 1 bags: the
            non-test rows go in K stratified folds (`datamodules/splits.py`), `fit` trains
            one network per fold, each validated (early-stopped, best epoch chosen) on its
            own fold, and averages them (`lightning_modules/bagging.py`); the test rows
            stay the protocol's. "auto" bags where the training split has fewer than
            1,500 rows of its rarer class (defaulters, usually) or a categorical with at
            least 20 training levels, on 8 folds where each network would train on fewer
            than 5,120 rows and 5 otherwise (`bag_size`), else 1 (`resolved_folds`).
        scaling: "quantile" (quantile-to-normal, robust to heavy tails) or "standard".
        min_level_count: categorical levels seen fewer times in training share the
            unknown code.
        value_counts: add, per numeric column, how often training had each exact value
            (heaped incomes, sentinel codes; `datamodules/preprocessing.py`), counting only
            values seen at least `min_value_count` times.
        target_statistics: add, per categorical column, its level's default rate shrunk
            towards the overall rate; training rows get theirs out of fold (never from
            their own target; `datamodules/preprocessing.py`). True: every categorical;
            "auto": those with at least 20 training levels, where embeddings alone fall
            short; False: none.
        value_statistics: add, per numeric column, the default rate of its value (values
            seen at least `min_value_count` times; the others share one rate), out of fold
            for training rows like the target statistics. "auto": from 5,120 training rows
            (+0.002 on average there, up to +0.010 on credit_risk; on 800 rows it lost
            0.013); needs `value_counts`.
        pair_statistics: add, per pair of categoricals that interact, the default rate of
            their joint level, out of fold for training rows. A pair joins where a
            likelihood-ratio test over all pairs finds its rate adds to its two columns'
            (at most 32 pairs; `datamodules/interactions.py`): CatBoost's combinations of
            categoricals, as network inputs.
        triple_statistics: the same for triples of categoricals that hold such a pair, where
            the triple's rate adds to its columns' and pairs' (at most 16).
        coerce_numeric: treat unparseable text in numeric columns as missing (counted).
        predict_path: unlabelled file for `predict`; predict_read_options: its parsing
            (default: the same as `read_options`).
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        target: str = synthetic.TARGET_COLUMN,
        positive_label: Label | None = None,
        id_column: str | None = None,
        drop_columns: list[str] | None = None,
        categorical_columns: list[str] | None = None,
        max_inferred_levels: int = 10,
        read_options: ReadOptions | None = None,
        data_dir: str | None = None,
        synthetic: SyntheticData = "loan_book",
        synthetic_rows: int = 100_000,
        synthetic_seed: int = 0,
        seed: int = 0,
        sample_rows: int | None = None,
        sample_positive_rate: float | None = None,
        noise_columns: int = 0,
        test_size: float = 0.2,
        val_size: float = 0.2,
        folds: int | Literal["auto"] = "auto",
        scaling: Scaling = "quantile",
        min_level_count: int = 1,
        value_counts: bool = True,
        min_value_count: int = 20,
        target_statistics: TargetStatistics = "auto",
        value_statistics: ValueStatistics = "auto",
        pair_statistics: bool = True,
        triple_statistics: bool = True,
        coerce_numeric: bool = False,
        batch_size: int | Literal["auto"] = "auto",
        eval_batch_size: int = 8192,
        predict_path: str | None = None,
        predict_read_options: ReadOptions | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.target = target
        self.positive_label = positive_label
        # The loan book's row number would otherwise be read as a feature by a data module
        # built without a config (`LoanDataModule()`).
        self.id_column = (
            _SYNTHETIC_ID_COLUMNS.get(synthetic)
            if id_column is None and path is None
            else id_column
        )
        self.drop_columns = list(drop_columns or [])
        self.categorical_columns = categorical_columns
        self.max_inferred_levels = max_inferred_levels
        self.read_options = _read_options(read_options) or ReadOptions()
        self.data_dir = data_dir
        check_choice("synthetic", synthetic, SyntheticData)
        self.synthetic = synthetic
        self.synthetic_rows = synthetic_rows
        self.synthetic_seed = synthetic_seed
        self.seed = seed
        check_sample_options(sample_rows, sample_positive_rate)
        self.sample_rows = sample_rows
        self.sample_positive_rate = sample_positive_rate
        check_range("noise_columns", noise_columns, low=0)
        self.noise_columns = noise_columns
        check_split_shares(test_size, val_size)
        self.test_size = test_size
        self.val_size = val_size
        if folds != "auto":
            check_range("folds", folds, low=1)
        self.folds = folds
        self.scaling = scaling
        self.min_level_count = min_level_count
        self.value_counts = value_counts
        self.min_value_count = min_value_count
        self.target_statistics = target_statistics
        self.value_statistics = value_statistics
        self.pair_statistics = pair_statistics
        self.triple_statistics = triple_statistics
        self.coerce_numeric = coerce_numeric
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.predict_path = predict_path
        self.predict_read_options = _read_options(predict_read_options) or self.read_options

        self.schema: TableSchema | None = None
        self.preprocessor: TabularPreprocessor | None = None
        self.positive_rate: float | None = None
        self._labelled: LabelledTable | None = None
        # The held-out rows of the fit a restored checkpoint comes from (None: not restored,
        # or a checkpoint from before they were recorded).
        self._fitted_held_out: HeldOutRows | None = None
        self._warned_small_test = False
        # The split the dataloaders serve: the protocol's, or the selected bagging fold's.
        self._fold: int | None = None
        self._tensors: dict[Split, TabularTensors] = {}
        # Per labelled row, its out-of-fold target statistics (NaN: not fitted on).
        self._out_of_fold: np.ndarray | None = None
        self._predict_frame: pd.DataFrame | None = None
        # Encoded once per predict file: the model and the submission writer read the same rows.
        self._predict_inputs: PredictInputs | None = None

    @property
    def source(self) -> str:
        if self.path:
            return self.path
        return f"synthetic {self.synthetic.replace('_', ' ')} ({self.synthetic_rows} rows)"

    @property
    def feature_spec(self) -> FeatureSpec | None:
        """The network's input description; None until fitted or restored from a checkpoint."""
        if self.preprocessor is None or self.positive_rate is None:
            return None
        return FeatureSpec(
            n_numeric=self.preprocessor.n_numeric_features,
            cardinalities=tuple(self.preprocessor.cardinalities),
            positive_rate=self.positive_rate,
            n_missing_indicators=len(self.preprocessor.indicator_columns_),
        )

    def code_labels(self) -> dict[str, list[str]]:
        """Per categorical column, what each code stands for (reserved codes first)."""
        return self._fitted_preprocessor().code_labels()

    # Lightning hooks -------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if stage == "predict":
            # Read when first needed: after the checkpoint is restored (Lightning sets up
            # first), whose schema says which columns to read as text.
            self._predict_frame = None
            self._predict_inputs = None
            return
        labelled = self.labelled_table()
        if not self._warned_small_test:
            _warn_on_a_small_test_split(labelled, source=self.source)
            self._warned_small_test = True
        if stage == "fit" and self.preprocessor is None:
            self._fit_preprocessor()

    def resolved_folds(self) -> int:
        """`folds`, where "auto" bags (`bag_size`) below FEW_TRAINING_CASES training rows of
        the rarer class or where a categorical has at least WIDE_CATEGORICAL_LEVELS
        training levels, and is 1 otherwise (reads the labelled file)."""
        if self.folds != "auto":
            return self.folds
        return self.bag_size() if self.auto_bagging_reason() else 1

    def auto_bagging_reason(self) -> str | None:
        """Why `folds: auto` bags this data, in words for the fit's summary line (a bag
        costs several fits, and a date read as a categorical can be the reason); None where
        it fits one network or `folds` is given."""
        if self.folds != "auto":
            return None
        labelled = self.labelled_table()
        cases = rarer_class_rows(labelled.targets[labelled.split.train])
        if cases < FEW_TRAINING_CASES:
            return f"{cases:,} training rows of the rarer class, below {FEW_TRAINING_CASES:,}"
        training_rows = labelled.frame.iloc[labelled.split.train]
        for name in self._require_schema().categorical_columns:
            levels = len(level_vocabulary(training_rows[name], self.min_level_count))
            if is_wide(levels):
                return f"{name!r} has {levels:,} training levels, a wide categorical"
        return None

    def bag_size(self) -> int:
        """The folds of this data's bag where `folds: auto` bags: SMALL_DATA_BAGGING_FOLDS
        where each of its networks would train on fewer than SMALL_TRAINING_ROWS rows (so
        that they all take the small-set training settings, which the eight-fold bag was
        measured with), else BAGGING_FOLDS."""
        folds = self.fold_splits(SMALL_DATA_BAGGING_FOLDS)
        small = max(len(fold.train) for fold in folds) < SMALL_TRAINING_ROWS
        return SMALL_DATA_BAGGING_FOLDS if small else BAGGING_FOLDS

    def fold_splits(self, folds: int | None = None) -> list[SplitIndices]:
        """The bagging folds of the labelled rows: `folds` of them, by default
        `resolved_folds` (> 1)."""
        labelled = self.labelled_table()
        return bagging_folds(
            labelled.targets,
            labelled.split,
            folds=self.resolved_folds() if folds is None else folds,
            seed=self.seed,
            source=self.source,
        )

    def select_fold(self, fold: int | None) -> None:
        """Serve bagging fold `fold` as the training and validation splits (None: the
        protocol's); the preprocessing and the test rows stay as they are."""
        folds = self.resolved_folds()
        if fold is not None and not 0 <= fold < folds:
            raise ValueError(f"fold {fold} is not one of the {folds} folds")
        if (fold is None) != (self._fold is None):
            self._out_of_fold = None  # computed over other rows (`_preprocessing_rows`)
        self._fold = fold
        self._tensors.pop("train", None)
        self._tensors.pop("val", None)

    @property
    def selected_fold(self) -> int | None:
        """The bagging fold served as the training and validation splits (None: the
        protocol's)."""
        return self._fold

    def active_split(self) -> SplitIndices:
        """The rows behind each split name: the protocol's, or the selected fold's."""
        labelled = self.labelled_table()
        return labelled.split if self._fold is None else self.fold_splits()[self._fold]

    def train_dataloader(self) -> DataLoader[Batch]:
        train = self.split_tensors("train")
        return batch_loader(train, batch_size=self.training_batch_size(), shuffle=True)

    def training_batch_size(self) -> int:
        """`batch_size`, where "auto" is 512 from 5,120 training rows (ten such batches an
        epoch) and 256 below.

        Measured with the default cosine budget: batch 512 fits taiwan, heloc and gmsc as
        well as or better than 256 in about two thirds of the time; on german's 640 rows it
        leaves two steps an epoch and loses 0.015 ROC-AUC (BENCHMARKS.md).
        """
        if self.batch_size != "auto":
            return self.batch_size
        rows = len(self.active_split().train)
        return 256 if rows < SMALL_TRAINING_ROWS else 512

    def resolved_settings(self) -> dict[str, int]:
        """The settings whose `auto` the data decides, as this data resolves them (what a
        run is compared on in TensorBoard's HPARAMS; the config keeps `auto`)."""
        return {"batch_size": self.training_batch_size(), "folds": self.resolved_folds()}

    def val_dataloader(self) -> DataLoader[Batch]:
        return batch_loader(
            self.split_tensors("val"), batch_size=self.eval_batch_size, shuffle=False
        )

    def test_dataloader(self) -> DataLoader[Batch]:
        return batch_loader(
            self.split_tensors("test"), batch_size=self.eval_batch_size, shuffle=False
        )

    def predict_dataloader(self) -> DataLoader[Batch]:
        return batch_loader(
            self.predict_inputs().tensors, batch_size=self.eval_batch_size, shuffle=False
        )

    def state_dict(self) -> dict[str, Any]:
        if self.preprocessor is None or self.schema is None:
            return {}
        held_out = self._labelled.held_out if self._labelled is not None else self._fitted_held_out
        state = {
            "schema": self.schema.to_state(),
            "preprocessor": self.preprocessor.state_dict(),
            "positive_rate": self.positive_rate,
        }
        if held_out is not None:
            state["held_out"] = held_out.to_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        restored = TableSchema.from_state(state_dict["schema"])
        self._require_same_positive_label(restored)
        schema_changed = restored != self.schema
        self.schema = restored
        self.preprocessor = TabularPreprocessor.from_state_dict(state_dict["preprocessor"])
        self.positive_rate = state_dict["positive_rate"]
        if restored.text_categoricals:
            # Read before the checkpoint was restored (Lightning sets up first): again, with
            # those columns as text.
            self._predict_frame = None
        held_out = state_dict.get("held_out")
        self._fitted_held_out = HeldOutRows.from_state(held_out) if held_out else None
        self._tensors.clear()
        self._out_of_fold = None
        self._predict_inputs = None
        if self._labelled is not None and schema_changed:
            self._labelled = self._load_labelled()
        if self._labelled is not None:
            self._require_fitted_held_out(self._labelled)

    def resolved_positive_label(self) -> Label:
        """The label named, else a restored checkpoint's, else 1."""
        if self.positive_label is not None:
            return self.positive_label
        return DEFAULT_POSITIVE_LABEL if self.schema is None else self.schema.positive_label

    def _require_same_positive_label(self, restored: TableSchema) -> None:
        """A checkpoint scores the probability of the label it was fitted on: another label
        named now would be ignored (the run's config.yaml recording it all the same), and
        every figure read as the other class's."""
        if self.positive_label is None or same_label(self.positive_label, restored.positive_label):
            return
        raise ConfigurationError(
            f"--data.positive_label {self.positive_label!r}: the checkpoint was fitted with "
            f"{restored.positive_label!r} as the value of {restored.target!r} that means "
            "default, and its scores are that value's probability. Leave the option out "
            "(the checkpoint keeps its label), or fit a new model with the other label."
        )

    # Labelled data ---------------------------------------------------------------------

    def labelled_table(self) -> LabelledTable:
        """The labelled file as read, validated and split (raw values, before preprocessing).

        The benchmark's baselines and the EDA report read the data through this, so every
        consumer sees the same rows, schema and protocol split as the network.
        """
        if self._labelled is None:
            self._labelled = self._load_labelled()
            self._require_fitted_held_out(self._labelled)
        return self._labelled

    def _require_fitted_held_out(self, labelled: LabelledTable) -> None:
        """After a checkpoint is restored, the labelled rows must split as the fit's did."""
        if self._fitted_held_out is not None:
            require_same_held_out(self._fitted_held_out, labelled.held_out, source=self.source)

    def require_fitted_rows(self, state: dict[str, Any], *, continued: str) -> None:
        """Before a fit continues from `state` (a checkpoint's data module state, or what a
        bag's fold recorded), its labelled rows must be the ones it began on. Checked before
        the model is restored: a changed file could change the network's input width too,
        and the restore would then fail with a size mismatch instead of this message."""
        held_out = state.get("held_out")
        if held_out is not None:
            require_same_rows(
                HeldOutRows.from_state(held_out),
                self.labelled_table().held_out,
                source=self.source,
                continued=continued,
            )

    def split_tensors(self, split: Split) -> TabularTensors:
        """The split's inputs and targets, encoded with the fitted (or restored) preprocessor."""
        if split not in self._tensors:
            labelled = self.labelled_table()
            rows = getattr(self.active_split(), split)
            encoded = self._fitted_preprocessor().transform(
                labelled.numeric, labelled.frame, rows, self._out_of_fold_statistics(split, rows)
            )
            self._tensors[split] = TabularTensors(
                numeric=torch.from_numpy(encoded.numeric),
                categorical=torch.from_numpy(encoded.categorical),
                target=torch.from_numpy(labelled.targets[rows].astype(np.float32)),
            )
        return self._tensors[split]

    def true_default_probability(self, split: Split) -> np.ndarray | None:
        """The synthetic book's true probabilities for a split (None for real data)."""
        labelled = self.labelled_table()
        if labelled.default_probability is None:
            return None
        return labelled.default_probability[getattr(self.active_split(), split)]

    def _load_labelled(self) -> LabelledTable:
        frame, default_probability = sample_labelled_rows(
            *self._read_labelled_file(),
            target=self.target,
            positive_label=self.resolved_positive_label(),
            rows=self.sample_rows,
            positive_rate=self.sample_positive_rate,
            seed=self.seed,
            source=self.source,
        )
        frame = append_noise_columns(frame, self.noise_columns, seed=self.seed, source=self.source)
        if self.schema is None:
            self.schema = build_schema(
                frame,
                source=self.source,
                target=self.target,
                positive_label=self.resolved_positive_label(),
                id_column=self.id_column,
                drop_columns=self.drop_columns,
                categorical_columns=self._configured_categoricals(),
                max_inferred_levels=self.max_inferred_levels,
            )
        schema = self.schema
        require_columns(frame, [schema.target], source=self.source, what="target column")
        require_columns(
            frame, schema.feature_columns, source=self.source, what="feature columns of the model"
        )
        targets = encode_target(frame[schema.target], schema.positive_label, source=self.source)
        split = protocol_split(
            targets,
            seed=self.seed,
            test_size=self.test_size,
            val_size=self.val_size,
            source=self.source,
        )
        numeric = numeric_block(frame, schema, source=self.source, coerce=self.coerce_numeric)
        frame = share_numeric_columns(frame, numeric, schema)
        # Arrow allocated the columns the frame no longer holds; measured: handing their
        # pages back lowers the peak of fitting by 0.15 GB per million rows.
        release_reader_memory()
        held_out = held_out_rows(
            frame, [*schema.feature_columns, schema.target], split, self._split_settings()
        )
        return LabelledTable(frame, numeric, targets, split, default_probability, held_out)

    def _split_settings(self) -> dict[str, Any]:
        """The options that decide which rows are held out (beside the file itself)."""
        drawn = (
            {"synthetic_rows": self.synthetic_rows, "synthetic_seed": self.synthetic_seed}
            if self.path is None
            else {}
        )
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "val_size": self.val_size,
            "sample_rows": self.sample_rows,
            "sample_positive_rate": self.sample_positive_rate,
            "noise_columns": self.noise_columns,
            **drawn,
        }

    def _read_labelled_file(self) -> tuple[pd.DataFrame, np.ndarray | None]:
        if self.path is None:
            book = _SYNTHETIC_FILES[self.synthetic](self.synthetic_rows, self.synthetic_seed)
            return book.frame, book.default_probability
        path = resolve_data_path(self.path, self.data_dir)
        return read_table(path, self.read_options, self._text_columns()), None

    def _text_columns(self) -> list[str]:
        """Columns read as written: the id, which predictions copy, and once a schema is
        fitted or restored the categoricals training held as text."""
        text = [self.id_column] if self.id_column else []
        return [*text, *(self.schema.text_categoricals if self.schema else ())]

    def _preprocessing_rows(self) -> np.ndarray:
        """The rows the preprocessing is fitted on: the training split's, or with bagging (a
        fold is served) all the rows any fold trains on, so that every fold's network reads
        the same encoding."""
        split = self.labelled_table().split
        return split.train if self._fold is None else np.union1d(split.train, split.val)

    def _out_of_fold_statistics(self, split: Split, rows: np.ndarray) -> np.ndarray | None:
        """The target statistics of the split's rows that the preprocessing was fitted on,
        computed out of fold; NaN for the others, which the fitted table serves. None
        without target statistics, and for the test rows, which are never fitted on.

        Recomputed (deterministically) after a checkpoint restores the preprocessor, so a
        resumed fit trains on the same inputs; the checkpoint does not carry them.
        """
        preprocessor = self._fitted_preprocessor()
        if not preprocessor.target_statistic_tables_ or split == "test":
            return None
        if self._out_of_fold is None:
            labelled = self.labelled_table()
            fitted = self._preprocessing_rows()
            self._out_of_fold = np.full(
                (len(labelled.frame), len(preprocessor.target_statistic_tables_)), np.nan
            )
            self._out_of_fold[fitted] = preprocessor.out_of_fold_statistics(
                labelled.numeric, labelled.frame, labelled.targets, fitted
            )
        return self._out_of_fold[rows]

    def _fit_preprocessor(self) -> None:
        labelled = self.labelled_table()
        schema = self._require_schema()
        split = labelled.split
        bagging = self._fold is not None
        train = self._preprocessing_rows()
        check_training_columns(
            labelled.frame, labelled.numeric, schema, source=self.source, rows=train
        )
        self.preprocessor = TabularPreprocessor(
            schema.numeric_columns,
            schema.categorical_columns,
            scaling=self.scaling,
            min_level_count=self.min_level_count,
            value_counts=self.value_counts,
            min_value_count=self.min_value_count,
            target_statistics=self.target_statistics,
            value_statistics=self.value_statistics,
            pair_statistics=self.pair_statistics,
            triple_statistics=self.triple_statistics,
            seed=self.seed,
        ).fit(labelled.numeric, labelled.frame, train, labelled.targets)
        self.positive_rate = float(labelled.targets[train].mean())
        self._tensors.clear()
        self._out_of_fold = None
        counts = f", +{len(schema.numeric_columns)} value counts" if self.value_counts else ""
        levels = len(self.preprocessor.target_statistic_columns_)
        values = len(self.preprocessor.value_statistic_columns_)
        counts += f", +{levels} level rates" if levels else ""
        counts += f", +{values} value rates" if values else ""
        combinations = self.preprocessor.combination_columns_
        pairs = sum(len(names) == 2 for names in combinations)
        triples = len(combinations) - pairs
        counts += f", +{pairs} pair rates" if pairs else ""
        counts += f", +{triples} triple rates" if triples else ""
        reason = self.auto_bagging_reason() if bagging else None
        parts = (
            f"{self.resolved_folds()} folds of {len(train)}"
            + (f" (a bag: {reason})" if reason else "")
            if bagging
            else f"train {len(split.train)}, val {len(split.val)}"
        )
        rank_zero_info(
            f"{self.source}: {len(labelled.frame)} rows -> {parts}, test {len(split.test)}; "
            f"{len(schema.numeric_columns)} numeric (+{len(self.preprocessor.indicator_columns_)}"
            f" missing indicators{counts}), {len(schema.categorical_columns)} categorical "
            f"{list(schema.categorical_columns)}; train default rate {self.positive_rate:.4f}"
        )

    # Unlabelled data -------------------------------------------------------------------

    def predict_ids(self) -> tuple[str, np.ndarray] | None:
        """The id column's name and values for the prediction file, if the file has ids."""
        frame = self._require_predict_frame()
        schema = self._require_schema()
        if schema.id_column is not None and schema.id_column in frame.columns:
            ids = frame[schema.id_column]
            _warn_on_unusable_ids(ids, source=str(self.predict_path))
            return schema.id_column, ids.to_numpy()
        if schema.id_column is not None:
            near = [name for name in frame.columns if name.lower() == schema.id_column.lower()]
            log.warning(
                "%s: no id column %r%s; the predictions are written in the file's row order "
                "without ids",
                self.predict_path,
                schema.id_column,
                f" (the file has {near[0]!r}: rename it to add the ids)" if near else "",
            )
        if self.predict_read_options.index_col is not None:
            return str(frame.index.name or "id"), frame.index.to_numpy()
        return None

    def predict_inputs(self) -> PredictInputs:
        """The unlabelled file encoded with the fitted preprocessing (read and checked once)."""
        if self._predict_inputs is None:
            self._predict_inputs = self._encode_predict_file()
        return self._predict_inputs

    def feature_distributions(self) -> dict[str, BinnedDistribution]:
        """Each feature's training distribution on its fixed bins, as the checkpoint keeps it."""
        return self._fitted_preprocessor().distributions_

    def reference_applicant(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The typical applicant reason codes compare with (training medians, most frequent
        levels), encoded. Shape: numeric (1, n_numeric), categorical (1, n_cat)."""
        encoded = self._fitted_preprocessor().reference_applicant()
        return torch.from_numpy(encoded.numeric), torch.from_numpy(encoded.categorical)

    def numeric_input_owners(self) -> list[tuple[str, ...]]:
        """The user columns behind each input of the numeric block (value, value count,
        missing indicator: one; a pair's rate: two)."""
        return self._fitted_preprocessor().numeric_input_owners()

    def _read_predict_file(self) -> pd.DataFrame:
        if self.predict_path is None:
            raise DataValidationError(
                "predict needs an unlabelled file: pass --data.predict_path <file>."
            )
        path = resolve_data_path(self.predict_path, self.data_dir)
        frame = read_table(path, self.predict_read_options, self._text_columns())
        return append_noise_columns(frame, self.noise_columns, seed=self.seed, source=str(path))

    def _configured_categoricals(self) -> list[str] | None:
        """The configured categoricals and the noise's not dropped (None: infer them all)."""
        if self.categorical_columns is None:
            return None
        noise = noise_column_names(self.noise_columns)[1]
        return [*self.categorical_columns, *(n for n in noise if n not in self.drop_columns)]

    def _encode_predict_file(self) -> PredictInputs:
        frame = self._require_predict_frame()
        schema = self._require_schema()
        source = str(self.predict_path)
        require_trained_columns(frame, schema, source=source)
        known = {*schema.feature_columns, schema.target, schema.id_column}
        extra = [name for name in frame.columns if name not in known]
        if extra:
            rank_zero_info(
                f"{source}: ignoring {counted(len(extra), 'column')} not used by the model: {extra}"
            )
        preprocessor = self._fitted_preprocessor()
        numeric = numeric_block(frame, schema, source=source, coerce=self.coerce_numeric)
        categorical = frame[list(schema.categorical_columns)]
        self._report_unfamiliar_values(source, numeric, categorical, preprocessor)
        encoded = preprocessor.transform(numeric, categorical)
        tensors = TabularTensors(
            numeric=torch.from_numpy(encoded.numeric),
            categorical=torch.from_numpy(encoded.categorical),
            target=torch.zeros(len(frame), dtype=torch.float32),
        )
        return PredictInputs(tensors, preprocessor.feature_counts(numeric, categorical))

    def _report_unfamiliar_values(
        self,
        source: str,
        numeric: np.ndarray,
        categorical: pd.DataFrame,
        preprocessor: TabularPreprocessor,
    ) -> None:
        """Count what training never showed the model; it is handled, but worth knowing."""
        unknown = preprocessor.count_unknown(categorical)
        if unknown:
            rank_zero_info(
                f"{source}: category levels unseen in training (unknown code): {unknown}"
            )
        vocabularies = preprocessor.vocabularies_
        for name, count in unknown.items():
            if count == categorical[name].notna().sum():
                rank_zero_warn(
                    f"{source}: column {name!r}: none of its values is a level training kept "
                    f"(e.g. {categorical[name].dropna().astype(str).unique()[:3].tolist()}; "
                    f"training's: {list(vocabularies[name][:3])}), so every row is scored like "
                    "an unknown level. Is the column written another way in this file?"
                )
        beyond = preprocessor.count_beyond_range(numeric)
        if beyond:
            rank_zero_info(
                f"{source}: values outside the training range (scored like the range's nearest "
                f"edge; check for unit errors or typos): {beyond}"
            )
        gaps = preprocessor.count_gaps(numeric, categorical)
        empty = [name for name, count in gaps.items() if count == len(numeric)]
        if empty and len(numeric) > 1:
            # A column left empty by an export: each row is scored as a gap there, which a
            # column with gaps in training would otherwise pass without a word.
            rank_zero_warn(
                f"{source}: columns with no value in any row: {empty}; every row is scored "
                "as missing there (numbers at the training median). Was the column left "
                "out of the export?"
            )
        new_gaps = preprocessor.new_gaps(gaps)
        if new_gaps:
            rank_zero_info(
                f"{source}: missing values in columns complete in training (numbers imputed "
                f"with the training median, categories scored like the average training "
                f"row's): {new_gaps}"
            )

    # Guards ----------------------------------------------------------------------------

    def _require_schema(self) -> TableSchema:
        if self.schema is None:
            raise RuntimeError("no schema yet: call setup('fit') or restore a checkpoint first")
        return self.schema

    def _require_predict_frame(self) -> pd.DataFrame:
        if self._predict_frame is None:
            self._predict_frame = self._read_predict_file()
        return self._predict_frame

    def _fitted_preprocessor(self) -> TabularPreprocessor:
        if self.preprocessor is None:
            raise DataValidationError(
                "the preprocessing is not fitted: run `fit` first, or give `test`/`predict` a "
                "checkpoint with --ckpt_path."
            )
        return self.preprocessor


# Below this many rows of either class in the test split, a single row moves its ROC-AUC by
# more than 0.05 (1 / rows), so its figures are anecdotes.
FEW_TEST_CASES = 20


def _warn_on_a_small_test_split(labelled: LabelledTable, *, source: str) -> None:
    counts = np.bincount(labelled.targets[labelled.split.test], minlength=2)
    if counts.min() < FEW_TEST_CASES:
        log.warning(
            "%s: the test split holds %d defaulters and %d others: one row can move its "
            "ROC-AUC by up to %.2f, so read its figures as rough; more labelled rows make them "
            "firmer",
            source,
            counts[1],
            counts[0],
            1 / counts.min(),
        )


def _warn_on_unusable_ids(ids: pd.Series, *, source: str) -> None:
    """Predictions are matched to applicants by id: say where that cannot work."""
    blank = int(ids.isna().sum())
    if blank:
        log.warning(
            "%s: %s no id; their predictions have an empty id",
            source,
            counted(blank, "row has", "rows have"),
        )
    repeated = ids[ids.duplicated(keep=False) & ids.notna()]
    if not repeated.empty:
        log.warning(
            "%s: %s more than once (e.g. %s); their predictions cannot be told apart by id",
            source,
            counted(repeated.nunique(), "id occurs", "ids occur"),
            repeated.unique()[:3].tolist(),
        )
