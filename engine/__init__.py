"""The machine-unlearning engine: datasets, forget specs, models, training, metrics, checkpoints.

The app uses the engine only through the names exported here. Nothing in the engine imports streamlit.
"""
from engine.checkpoints import (CheckpointError, ModelCheck, check_model, load_checkpoint, load_state_file, read_sidecar,
                                save_checkpoint, size_text, versions, write_json_atomic)
from engine.data import DATASET_NAMES, ImageDataset, augment, from_arrays, load_dataset, to_float
from engine.evaluation import Evaluation, SplitOutputs, evaluate, evaluate_outputs, split_outputs
from engine.metrics import GAP_KEYS, accuracy, avg_gap, confusion_matrix, mean_and_std, per_class_accuracy
from engine.models import ARCHITECTURES, ModelSpec, build_model, spec_for
from engine.privacy import mia_efficacy, true_label_confidence
from engine.progress import Progress, ProgressCallback, RunCancelled, RunDiverged, StopCheck
from engine.references import (find_reference, load_original, original_path, reference_path, retrain,
                               train_and_save, train_from_scratch)
from engine.splits import DataSplit, ForgetSpec, make_split, training_indices, validation_indices
from engine.training import (RECIPES, Outputs, TrainRecipe, device_name, place, predict, resolve_device,
                             seed_everything, train_model)

# --- unlearning methods (issue 3): the methods helper edits only this section
from engine import runs
from engine.methods import (METHODS, ConfigField, MethodConfig, MethodInfo, UnlearnResult, config_fields, make_config,
                            setting_defaults)
from engine.selfsupervised import fit_linear_probe, train_simclr
from engine.unlearning import RunOutcome, reference_scores_for, run_unlearning
# --- end unlearning methods

# --- insights (issue 4): the insights helper edits only this section
from engine.attacks import (ATTACK_SCORES, COMPARISONS, ROC_GRID, Distinguishability, PrivacyAttacks, RocCurve,
                            distinguishability, membership_scores, roc_curve, run_attacks, threshold_attacks)
from engine.attribution import ATTRIBUTION_METHODS, Attributions, attribute, default_attribution_ids, explain
from engine.insights import Insights, InsightsCache, InsightsConfig, compute_insights, fingerprint
from engine.privacy import cross_entropy_loss, entropy, modified_entropy
from engine.projection import FeatureSpace, Projection, fit_projection, numba_cache_dir, project_features, warm_up
from engine.weight_maps import WeightMaps, block_average, comparison_ids, map_weights
# --- end insights

__all__ = [name for name in dir() if not name.startswith("_")]
