"""The `LightningModule`: loss, optimiser, metrics and the decision threshold around the network."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal

import lightning as L
import torch
import torchmetrics.functional.classification as tmf
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanMetric

from contracts.choices import check_choice, check_range
from contracts.errors import ConfigurationError, NonFiniteTrainingError
from contracts.evaluation import EvaluationOutputs
from contracts.features import (
    SMALL_TRAINING_ROWS,
    FeatureSpec,
    FittedTabularData,
    rarer_class_rows,
)
from lightning_modules.calibration import fit_temperature, mean_probability_logit
from lightning_modules.metrics import (
    PredictionCollector,
    ThresholdObjective,
    binary_report,
    choose_threshold,
    probability_quality,
)
from lightning_modules.networks import LoanDefaultNet, NetworkBag, NetworkSettings, tree_inputs
from lightning_modules.optimizers import AdamW, optimizer_settings
from lightning_modules.weight_averaging import WeightMovingAverage
from risk.attribution import integrated_gradients
from risk.stability import QUANTILE_LEVELS, BinnedDistribution, numeric_distribution, numeric_labels

ClassWeighting = Literal["none", "balanced"]
LRSchedule = Literal["constant", "cosine", "auto"]
MONITOR = "val/roc_auc"
# `training_epochs: auto`: about this many optimiser steps, within these epoch bounds
# (BENCHMARKS.md; docs/model-options.md, "Training budget").
AUTO_STEPS = 1500
AUTO_EPOCH_BOUNDS = (8, 16)
# A bagged fit's checkpoint holds its fold count under this key: its networks trained on
# the protocol's validation rows, so `validate` must not score them as held out.
BAGGED_FOLDS_KEY = "bagged_folds"
# A fitted checkpoint's record of its fit: the `auto` settings as the fit resolved them, the
# trainer's epoch limit and the optimiser's settings (a bag's, also each fold's epochs).
# `test` and `predict` neither fit nor build an optimiser, so without it their model card
# and HPARAMS could show only `auto` and no learning rate.
FIT_RECORD_KEY = "fit_record"
FOLD_EPOCHS_KEY = "fold_epochs"
RECOMMENDED_NETWORK = NetworkSettings()


class LoanDefaultModel(L.LightningModule):
    """Predicts P(default) for each applicant; the defaults are the recommended model.

    `inputs` is normally left unset: `configure_model` takes it from the fitted data module
    and writes it into the hyperparameters, so a checkpoint alone rebuilds the network
    (LightningCLI feeds a checkpoint's hyperparameters back for `test`/`predict
    --ckpt_path`). A link applied at instantiation would instead have to read and fit the
    training file before any checkpoint is restored, which `predict` must not need.

    Args:
        net: the network's architecture (`NetworkSettings`; `--model.net.dropout 0.1`).
        optimizer: LightningCLI-injected; AdamW with its defaults (lr 1e-3, weight decay
            0.01) and the fused update (`lightning_modules/optimizers.py`) unless configured.
        lr_schedule: "cosine" decays the learning rate to 0 over the fit's epochs;
            "constant" keeps it; either after a linear warm-up over `warmup_fraction` of
            the steps. "auto": cosine, or constant below 5,120 training rows.
        training_epochs: the epochs a fit trains; the test and the benchmark use its best
            epoch. "auto" sizes it from the training set: 16 epochs, fewer for large sets
            so that a fit takes about 1,500 optimiser steps, never fewer than 8; below
            5,120 training rows no budget (early stopping ends the fit).
            `trainer.max_epochs` and early stopping can end a fit sooner.
        class_weighting: "balanced" weighs positives by negatives/positives in the loss.
        threshold_objective: what the validation-chosen decision threshold maximises.
        temperature_scaling: fit one temperature on the validation logits after each
            validation epoch; test and predict use the calibrated probabilities.
        weight_average_half_life: validation scores, and checkpoints keep, an exponential
            moving average of the weights with this half-life in epochs
            (`lightning_modules/weight_averaging.py`); null trains without.
        networks: independent networks whose probabilities are averaged. A bagged fit
            (`--data.folds K`) writes a checkpoint with K, one network per fold
            (`lightning_modules/bagging.py`); set for a plain fit, all of them train on
            the same rows (a deep ensemble).
        inputs: the network's input description (see above).
    """

    def __init__(
        self,
        *,
        net: NetworkSettings = RECOMMENDED_NETWORK,
        optimizer: OptimizerCallable = AdamW,
        lr_schedule: LRSchedule = "auto",
        training_epochs: int | Literal["auto"] = "auto",
        warmup_fraction: float = 0.0,
        class_weighting: ClassWeighting = "none",
        threshold_objective: ThresholdObjective = "accuracy",
        temperature_scaling: bool = True,
        weight_average_half_life: float | None = 0.5,
        networks: int = 1,
        inputs: FeatureSpec | None = None,
    ) -> None:
        super().__init__()
        check_choice("lr_schedule", lr_schedule, LRSchedule)
        if training_epochs != "auto":
            check_range("training_epochs", training_epochs, low=1)
        check_range("warmup_fraction", warmup_fraction, low=0.0, high=1.0, high_inclusive=False)
        check_choice("class_weighting", class_weighting, ClassWeighting)
        check_choice("threshold_objective", threshold_objective, ThresholdObjective)
        check_range("networks", networks, low=1)
        if weight_average_half_life is not None:
            check_range(
                "weight_average_half_life", weight_average_half_life, low=0.0, low_inclusive=False
            )
        # `load_from_checkpoint` passes back the plain dicts the hyperparameters hold.
        if isinstance(net, Mapping):
            net = NetworkSettings(**net)
        if isinstance(inputs, Mapping):
            inputs = FeatureSpec.from_dict(inputs)
        self.settings = net
        self.save_hyperparameters(ignore=["optimizer"])
        # Plain values only, so that checkpoints load with `weights_only=True`.
        self.hparams["net"] = asdict(net)
        self.hparams["inputs"] = None if inputs is None else inputs.to_dict()
        self.optimizer_factory = optimizer
        self.net: LoanDefaultNet | NetworkBag | None = None
        self.register_buffer("decision_threshold", torch.tensor(0.5))
        self.register_buffer("pos_weight", torch.tensor(1.0))
        self.register_buffer("temperature", torch.tensor(1.0))
        # The reference distribution of the score for `predict`'s stability report: the
        # validation probabilities of the epoch a checkpoint saves, on their deciles (and
        # an always-empty missing bin, as for a numeric feature). Out of sample, like new
        # applicants; training scores are more extreme than the model's scores on new rows.
        self.register_buffer("score_cuts", torch.zeros(len(QUANTILE_LEVELS)))
        self.register_buffer(
            "score_counts", torch.zeros(len(QUANTILE_LEVELS) + 2, dtype=torch.int64)
        )
        self.train_predictions = PredictionCollector()
        self.train_loss = MeanMetric()
        self.val_predictions = PredictionCollector()
        self.test_predictions = PredictionCollector()
        self._validation_outputs: EvaluationOutputs | None = None
        self._test_outputs: EvaluationOutputs | None = None
        self._bagged_folds = 0  # set from a bagged fit's checkpoint (BAGGED_FOLDS_KEY)
        self.fit_record: dict[str, Any] = {}  # this fit's, or its checkpoint's (FIT_RECORD_KEY)
        self.fold_epochs: list[int] = []  # a bag's, from its checkpoint (FOLD_EPOCHS_KEY)
        self.saved_epoch: int | None = None  # the loaded checkpoint's epoch (0-based)
        self._epoch_limit: int | None = None  # the trainer's max_epochs as this fit was given it
        if inputs is not None:
            self._build(inputs)

    @property
    def bagged_folds(self) -> int:
        """The folds of the bag this model's checkpoint holds (0: one network)."""
        return self._bagged_folds

    @property
    def validation_outputs(self) -> EvaluationOutputs | None:
        """The last validation epoch's calibrated predictions, for the TensorBoard views."""
        return self._validation_outputs

    @property
    def test_outputs(self) -> EvaluationOutputs | None:
        """The last test epoch's calibrated predictions, for the test reports (gains table,
        model card, KS chart)."""
        return self._test_outputs

    def score_reference(self) -> BinnedDistribution | None:
        """The validation scores' distribution kept in the checkpoint; None before the first
        validation epoch."""
        counts = self.score_counts.cpu().numpy()
        if counts.sum() == 0:
            return None
        cuts = self.score_cuts.double().cpu().numpy()
        return BinnedDistribution(counts, numeric_labels(cuts), cuts)

    def categorical_embedding_weights(self) -> list[torch.Tensor]:
        """One (n_codes, dim) table per categorical column, for the TensorBoard projector
        (the first network's, in a bag of several)."""
        if self.net is None:
            return []
        return [table.weight for table in self.networks()[0].embeddings.tables]

    def networks(self) -> list[LoanDefaultNet]:
        """The model's independent networks (one unless `networks` > 1)."""
        if self.net is None:
            raise RuntimeError("the network is not built yet (see configure_model)")
        return list(self.net) if isinstance(self.net, NetworkBag) else [self.net]

    def configure_model(self) -> None:
        """Build the network from the data module once its preprocessing is fitted.

        Piecewise-linear bins are fitted here on the training split's encoded rows and kept
        as network buffers: the data module stays model-agnostic, and a checkpoint restores
        the edges with the weights (a restored model is built in `__init__`, without data).
        """
        if self._trainer is None:  # load_from_checkpoint: the network is built, nothing to check
            return
        datamodule = self.trainer.datamodule
        if datamodule is not None and not isinstance(datamodule, FittedTabularData):
            raise ConfigurationError(
                f"{type(datamodule).__name__} does not provide feature_spec, split_tensors and "
                "code_labels (contracts.features.FittedTabularData): use LoanDataModule"
            )
        spec = None if datamodule is None else datamodule.feature_spec
        if self.net is not None:
            if spec is not None:
                self._check_matches(spec)
            return
        if datamodule is None or spec is None:
            raise ConfigurationError(
                "the network's inputs are unknown: fit with a LoanDataModule, or pass inputs"
            )
        train = datamodule.split_tensors("train")
        self.settings = self.settings.resolved(
            len(train), rarer_class_rows(train.target), spec.has_wide_categorical
        )
        self._build(spec)
        for network in self.networks():
            network.fit_to_training_rows(
                train.numeric, train.categorical, train.target, edges=self.settings.bin_edges
            )

    def _build(self, inputs: FeatureSpec) -> None:
        self.hparams["inputs"] = inputs.to_dict()
        self.hparams["net"] = asdict(self.settings)
        networks = [LoanDefaultNet(inputs, self.settings) for _ in range(self.hparams.networks)]
        self.net = networks[0] if len(networks) == 1 else NetworkBag(networks)
        if self.hparams.class_weighting == "balanced":
            self.pos_weight.fill_((1.0 - inputs.positive_rate) / inputs.positive_rate)

    def _check_matches(self, spec: FeatureSpec) -> None:
        built = FeatureSpec.from_dict(self.hparams["inputs"])
        if (spec.n_numeric, spec.cardinalities) != (built.n_numeric, built.cardinalities):
            raise ConfigurationError(
                "the checkpoint's network expects "
                f"{built.n_numeric} numeric inputs and categorical cardinalities "
                f"{list(built.cardinalities)}, but the data gives {spec.n_numeric} and "
                f"{list(spec.cardinalities)}: the data's columns differ from the training file's."
            )

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Calibrated default logits of the ensemble's mean probability.

        Shape: x_num (B, n_numeric), x_cat (B, n_cat) -> (B,).
        """
        return self.raw_logits(x_num, x_cat) / self.temperature

    def raw_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Before temperature scaling. Shape: (B, n_numeric), (B, n_cat) -> (B,)."""
        return mean_probability_logit(self.member_logits(x_num, x_cat))

    def member_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Each ensemble member's logits. Shape: (B, n_numeric), (B, n_cat) -> (B, k)."""
        if self.net is None:
            raise RuntimeError("the network is not built yet (see configure_model)")
        return self.net(x_num, x_cat)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean BCE; for (B, k) member logits, the mean of the members' losses."""
        if logits.ndim == 2:
            target = target[:, None].expand_as(logits)
        return nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=self.pos_weight
        )

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x_num, x_cat, target = batch
        member_logits = self.member_logits(x_num, x_cat)
        loss = self._loss(member_logits, target)
        probs = torch.sigmoid(member_logits.detach()).mean(dim=1)
        self.train_predictions.update(probs, target)
        self.train_loss.update(loss.detach(), weight=len(target))
        if (self.global_step + 1) % max(1, self.trainer.log_every_n_steps) == 0:
            self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_predictions)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_predictions)

    def _evaluate(
        self, batch: tuple[torch.Tensor, ...], stage: str, collector: PredictionCollector
    ) -> None:
        x_num, x_cat, target = batch
        # Validation scores the raw logits (the temperature is refitted on them at epoch
        # end); test scores what predict returns.
        logits = self.raw_logits(x_num, x_cat) if stage == "val" else self(x_num, x_cat)
        loss = self._loss(logits, target)
        self.log(f"{stage}/loss", loss, batch_size=len(target), sync_dist=True)
        collector.update(logits, target)  # logits here; probabilities at epoch end

    def on_validation_epoch_end(self) -> None:
        """Fit the temperature, then choose the decision threshold on the calibrated
        probabilities (those predict returns); the checkpoint saved now carries both."""
        logits, targets = self.val_predictions.compute()
        self.val_predictions.reset()
        self._require_finite(logits, "validation")
        outputs = self.calibrate(logits, targets)
        self._log_report(outputs.probabilities, targets, "val")
        raw_quality = probability_quality(torch.sigmoid(logits), targets)
        self.log_dict(
            {
                "val/calibration_error_raw": raw_quality["calibration_error"],
                "val/log_loss_raw": raw_quality["log_loss"],
                "val/temperature": self.temperature.clone(),
            }
        )

    def calibrate(self, logits: torch.Tensor, targets: torch.Tensor) -> EvaluationOutputs:
        """Fit the temperature and the decision threshold, and keep the score reference, on
        held-out raw logits and their targets: the validation rows after each validation
        epoch, or a bag's out-of-fold rows (whose score reference the bag then replaces with
        its scores on the test rows). Shape: logits (n,), targets (n,)."""
        if self.hparams.temperature_scaling:
            self.temperature.fill_(fit_temperature(logits, targets))
        probs = torch.sigmoid(logits / self.temperature)
        threshold = choose_threshold(probs, targets, self.hparams.threshold_objective)
        self.decision_threshold.fill_(threshold)
        self._validation_outputs = EvaluationOutputs(probs, targets, float(self.decision_threshold))
        self.keep_score_reference(probs)
        return self._validation_outputs

    def keep_score_reference(self, probs: torch.Tensor) -> None:
        """Keep the distribution of scores on rows the model did not train on, which
        `predict`'s stability report compares a new file's scores with. Shape: probs (n,)."""
        reference = numeric_distribution(probs.double().cpu().numpy())
        self.score_cuts.copy_(torch.from_numpy(reference.cuts))
        self.score_counts.copy_(torch.from_numpy(reference.counts))

    def on_test_epoch_end(self) -> None:
        logits, targets = self.test_predictions.compute()
        self.test_predictions.reset()
        self._require_finite(logits, "test")
        probs = torch.sigmoid(logits)
        self._test_outputs = EvaluationOutputs(probs, targets, float(self.decision_threshold))
        self._log_report(probs, targets, "test")

    def _require_finite(self, logits: torch.Tensor, stage: str) -> None:
        """Without this, NaN logits fail deep inside the metrics ("all elements of input
        should be between 0 and 1"), which names neither the stage nor the cause."""
        bad = int((~torch.isfinite(logits)).sum())
        if not bad:
            return
        where = f"the network's {stage} outputs hold NaN or infinity ({bad} of {len(logits)} rows)"
        if stage == "test" or self.trainer.sanity_checking:
            raise NonFiniteTrainingError(
                f"{where} before any training step of this run: the checkpoint's weights or "
                "the inputs' numeric encodings are not finite; check the checkpoint and look "
                "for extreme values in the data."
            )
        raise NonFiniteTrainingError(
            f"{where} at epoch {self.current_epoch}: training diverged. Lower the learning "
            "rate (--model.optimizer.init_args.lr) or look for extreme values in the data."
        )

    def _log_report(self, probs: torch.Tensor, targets: torch.Tensor, stage: str) -> None:
        report = binary_report(probs, targets, float(self.decision_threshold))
        self.log_dict({f"{stage}/{name}": value for name, value in report.items()}, sync_dist=False)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x_num, x_cat, _ = batch
        return torch.sigmoid(self(x_num, x_cat))

    def on_validation_start(self) -> None:
        """`validate` refuses a bag: each of its validation rows trained all but one of its
        networks, so the figures would be scores on training rows, and the temperature and
        threshold refitted on them would be wrong for new applicants."""
        if self._bagged_folds and self.trainer.state.fn == "validate":
            raise ConfigurationError(
                f"{self.trainer.ckpt_path}: a bag of {self._bagged_folds} networks "
                "(--data.folds), and every validation row trained all but one of them, so "
                "`validate` would score training rows. Its held-out figures are the "
                "out-of-fold ones its fit printed and logged as val/* (TensorBoard); `test` "
                "scores the test rows, which no network saw."
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints from before temperature scaling load with temperature 1, and those
        from before the score reference without one. A bagged fit's says so
        (BAGGED_FOLDS_KEY)."""
        self._bagged_folds = int(checkpoint.get(BAGGED_FOLDS_KEY, 0))
        self.fit_record = dict(checkpoint.get(FIT_RECORD_KEY, {}))
        self.fold_epochs = [int(epochs) for epochs in checkpoint.get(FOLD_EPOCHS_KEY, [])]
        self.saved_epoch = None if self._bagged_folds else checkpoint.get("epoch")
        state = checkpoint["state_dict"]
        state.setdefault("temperature", torch.tensor(1.0))
        state.setdefault("score_cuts", torch.zeros_like(self.score_cuts))
        state.setdefault("score_counts", torch.zeros_like(self.score_counts))

    def on_fit_start(self) -> None:
        """Record the fit once its optimiser is built (and after a resumed fit's checkpoint
        was read, whose record it replaces): every checkpoint of the fit carries it, and a
        bag, which writes its checkpoint itself, takes it from its first fold's model."""
        self.fit_record = self.resolved_settings()
        for optimizer in self.trainer.optimizers[:1]:
            self.fit_record |= optimizer_settings(optimizer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.fit_record:
            checkpoint[FIT_RECORD_KEY] = self.fit_record

    def input_attributions(
        self,
        x_num: torch.Tensor,
        x_cat: torch.Tensor,
        reference_num: torch.Tensor,
        reference_cat: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Integrated-gradients attributions of the calibrated logit (what `predict`'s
        probability is made of) to the inputs, against a reference applicant.

        Numbers are attributed as they enter the network; a categorical at its embedding's
        output (codes have no gradient), summed over the embedding's dimensions (and over
        the networks of a bag, each with its own embeddings), so that it gets one
        contribution. A tree's leaf is attributed at its one-hot input and moved onto the
        columns that its path tests (`TreeLeaves.attributions_by_feature`).

        Shape: x_num (n, n_numeric), x_cat (n, n_cat), reference_num (1, n_numeric),
        reference_cat (1, n_cat) -> numeric (n, n_numeric), categorical (n, n_cat) and
        gap (n,): the attributions' sum minus the logit difference (completeness).
        """
        embeddings = [network.embeddings for network in self.networks()]
        trees = [net.tree_leaves for net in self.networks() if net.tree_leaves is not None]
        x_num, reference_num = x_num.to(self.device), reference_num.to(self.device)
        x_cat, reference_cat = x_cat.to(self.device), reference_cat.to(self.device)
        tree_x, tree_reference = (
            tree_inputs(x_num, x_cat),
            tree_inputs(reference_num, reference_cat),
        )
        was_training = self.training
        # Attribute the function predict uses, its lookups included: batch-norm statistics,
        # no dropout, the training rows' average embedding for untrained codes.
        self.eval()
        try:
            # The embeddings and the trees' one-hot leaves are the attributed inputs, not a path
            # step: codes have no gradient, and a leaf flips where a path crosses a cut.
            with torch.no_grad():
                inputs = [x_num, torch.cat([table(x_cat) for table in embeddings], 1)]
                references = [
                    reference_num,
                    torch.cat([table(reference_cat) for table in embeddings], 1),
                ]
                if trees:
                    inputs.append(torch.cat([tree(tree_x) for tree in trees], 1))
                    references.append(torch.cat([tree(tree_reference) for tree in trees], 1))
            network_widths = [table.output_dim for table in embeddings]
            leaf_widths = [tree.n_leaves for tree in trees]

            def logit(numeric: torch.Tensor, *encoded: torch.Tensor) -> torch.Tensor:
                # Each network's embedding lookup (and tree) returns its part of the interpolated
                # embeddings (and leaves).
                codes = torch.zeros(
                    len(numeric), x_cat.shape[1], dtype=torch.long, device=self.device
                )
                replaced = list(zip(embeddings, encoded[0].split(network_widths, 1), strict=True))
                if trees:
                    replaced += zip(trees, encoded[1].split(leaf_widths, 1), strict=True)
                hooks = [
                    module.register_forward_hook(lambda *_, part=part: part)
                    for module, part in replaced
                ]
                try:
                    return self(numeric, codes)
                finally:
                    for hook in hooks:
                        hook.remove()

            (numeric, categorical, *leaves), gap = integrated_gradients(
                logit, tuple(inputs), tuple(references)
            )
        finally:
            self.train(was_training)
        column_widths = [table.embedding_dim for table in embeddings[0].tables]
        per_column = torch.zeros(len(categorical), len(column_widths), device=categorical.device)
        for network_part in categorical.split(network_widths, dim=1):
            for column, part in enumerate(network_part.split(column_widths, dim=1)):
                per_column[:, column] += part.sum(dim=1)
        if trees:
            for tree, part in zip(trees, leaves[0].split(leaf_widths, 1), strict=True):
                by_input = tree.attributions_by_feature(part, tree_x, tree_reference)
                numeric = numeric + by_input[:, : x_num.shape[1]]
                per_column += by_input[:, x_num.shape[1] :]
        return numeric, per_column, gap

    def on_train_epoch_end(self) -> None:
        """Training metrics once per epoch, and the step loss only on the steps the logger
        writes. Each `self.log` call costs Lightning about 0.7 ms on CPU (it moves the whole
        logged state between devices), and logging the metric objects from every
        `training_step` moved their growing state each time: together about a third of the
        default model's 9 ms step at batch 256 (`scripts/throughput.py`)."""
        self.log("train/loss_epoch", self.train_loss.compute())
        probs, targets = self.train_predictions.compute()
        labels = targets.long()
        self.log("train/roc_auc", tmf.binary_auroc(probs, labels))
        self.log("train/accuracy", tmf.binary_accuracy(probs, labels))
        self.train_loss.reset()
        self.train_predictions.reset()

    def planned_epochs(self) -> tuple[float, int]:
        """(epochs, optimiser steps per epoch) of this fit, from `training_epochs`.

        A budget sized by the data, not long patience: the best epoch was often the 2nd or
        3rd of 11 under a constant learning rate and early stopping, so most of a fit was
        waiting. A cosine over a fixed budget ends at small steps, where the weights settle.
        """
        trainer = self.trainer
        trainer.estimated_stepping_batches  # noqa: B018 (sets up the training batches)
        per_epoch = max(
            1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
        )
        epochs: float = self.hparams.training_epochs
        if epochs == "auto":
            epochs = math.inf if self._small_training_set() else auto_epochs(per_epoch)
        if trainer.max_epochs is not None and trainer.max_epochs >= 0:
            epochs = min(epochs, trainer.max_epochs)
        return epochs, per_epoch

    def resolved_lr_schedule(self) -> LRSchedule:
        """The schedule `lr_schedule` names; "auto" resolved by the training set's size."""
        if self.hparams.lr_schedule != "auto":
            return self.hparams.lr_schedule
        return "constant" if self._small_training_set() else "cosine"

    def resolved_settings(self) -> dict[str, Any]:
        """The training settings whose `auto` a fit decides, as this fit resolved them, and
        the trainer's epoch limit (what a run is compared on in TensorBoard's HPARAMS; the
        hyperparameters keep `auto`, so that a checkpoint fitted again on other data
        resolves them afresh). Outside a fit, the fit record of the loaded checkpoint."""
        trainer = self._trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return dict(self.fit_record)
        epochs, _ = self.planned_epochs()
        return {
            "training_epochs": int(epochs) if math.isfinite(epochs) else "until early stopping",
            "lr_schedule": self.resolved_lr_schedule(),
            "trainer/max_epochs": self._epoch_limit,
        }

    def _small_training_set(self) -> bool:
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, FittedTabularData):
            return False
        return len(datamodule.split_tensors("train")) < SMALL_TRAINING_ROWS

    def configure_callbacks(self) -> list[L.Callback]:
        """The weight average is a setting of the model, so that the code's default carries
        it into every fit (a config's trainer, the benchmark, a tuning trial, a bag's folds)."""
        half_life = self.hparams.weight_average_half_life
        return [] if half_life is None else [WeightMovingAverage(half_life)]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        epochs, per_epoch = self.planned_epochs()
        self._epoch_limit = self.trainer.max_epochs  # the user's, before the plan replaces it
        if math.isfinite(epochs):
            # The fit ends at its planned epoch, and the progress bar counts to it rather
            # than to the trainer's outer limit.
            self.trainer.fit_loop.max_epochs = int(epochs)
        schedule = self.resolved_lr_schedule()
        if schedule == "constant" and self.hparams.warmup_fraction == 0:
            return optimizer
        total = min(self.trainer.estimated_stepping_batches, epochs * per_epoch)
        if math.isinf(total):
            raise ConfigurationError(
                f"the {schedule} schedule needs a finite number of epochs: set "
                "--model.training_epochs or --trainer.max_epochs"
            )
        total = max(1, int(total))
        factor = _warmup_cosine(total, self.hparams.warmup_fraction, schedule)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def auto_epochs(steps_per_epoch: int) -> int:
    """`training_epochs: auto`: about AUTO_STEPS optimiser steps, within AUTO_EPOCH_BOUNDS."""
    low, high = AUTO_EPOCH_BOUNDS
    return min(high, max(low, round(AUTO_STEPS / steps_per_epoch)))


def _warmup_cosine(total_steps: int, warmup_fraction: float, schedule: LRSchedule) -> Any:
    """The learning-rate factor per step: linear warm-up, then constant or cosine to 0."""
    warmup = int(warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor
