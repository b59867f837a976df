"""The machine-unlearning engine: datasets, forget specs, models, training, methods, metrics, runs, insights.

The app uses the engine only through the names listed in `__all__` below (a test checks it); nothing in the
engine imports streamlit. Modules stay importable for the CLI, scripts and tests, but are not part of this list.
"""
from engine.attacks import (ATTACK_SCORES, COMPARISONS, ROC_GRID, Distinguishability, PrivacyAttacks, RocCurve,
                            distinguishability, membership_scores, roc_curve, run_attacks, threshold_attacks)
from engine.audit import (DELTA, EPSILON_CAP, ForgettingQuality, NoiseFloor, epsilon_limit, epsilon_points,
                          example_epsilons, forgetting_quality, largest_finite_epsilon, logit_scaled_confidence,
                          noise_floor)
from engine.attribution import ATTRIBUTION_METHODS, Attributions, attribute, default_attribution_ids, explain
from engine.checkpoints import (CheckpointError, ModelCheck, check_model, json_default, load_checkpoint,
                                load_state_file, read_sidecar, save_checkpoint, size_text, versions,
                                write_json_atomic)
from engine.data import DATASET_NAMES, ImageDataset, augment, from_arrays, load_dataset, to_float
from engine.distributions import load_score_distributions, score_distributions
from engine.executor import Job, JobFailed, make_executor
from engine.evaluation import Evaluation, SplitOutputs, evaluate, evaluate_outputs, split_outputs
from engine.identity import device_class, original_sha256, record_identity, run_identity
from engine.insights import Insights, InsightsCache, InsightsConfig, compute_insights, fingerprint
from engine.methods import (METHODS, ConfigField, MethodConfig, MethodInfo, UnlearnResult, config_fields,
                            form_defaults, make_config, setting_defaults)
from engine.lira import LiraAudit, lira_audit, lira_statistic, tpr_at_fpr
from engine.metrics import GAP_KEYS, accuracy, avg_gap, confusion_matrix, mean_and_std, per_class_accuracy
from engine.models import ARCHITECTURES, ModelSpec, build_model, spec_for
from engine.privacy import cross_entropy_loss, entropy, mia_efficacy, modified_entropy, true_label_confidence
from engine.progress import SHUTDOWN, Progress, ProgressCallback, RunCancelled, RunDiverged, StopCheck
from engine.projection import FeatureSpace, Projection, fit_projection, numba_cache_dir, project_features, warm_up
from engine.records import NOT_STARTED, PROCESS_TOKEN, RECORD_NAME, RunRecord, read_record, write_record
from engine.references import (computed_reference_path, find_reference, gap_scores, load_original, locate_reference,
                               original_path, reference_metrics, reference_path, reference_scores_for, retrain,
                               train_and_save, train_from_scratch, train_reference)
from engine.audit_live import DEEP_RUNS, POPULATION_SIZE, deep_audit_cost, noise_floor_for, read_audit, recipe_of
from engine.remote_jobs import SavedRun, remote_audit, remote_insights, remote_job, remote_reference, remote_unlearn
from engine.runs import fill_in_gaps, list_records, list_runs, load_run, new_run_dir, save_run
from engine.selfsupervised import fit_linear_probe, train_simclr
from engine.splits import DataSplit, ForgetSpec, make_split, training_indices, validation_indices
from engine.training import (RECIPES, Outputs, TrainRecipe, device_name, place, predict, resolve_device,
                             seed_everything, train_model)
from engine.unlearning import RunOutcome, run_unlearning
from engine.weight_maps import WeightMaps, block_average, comparison_ids, map_weights
from engine.workflow import (AuditRequest, ReferenceRequest, RunRequest, UnlearnedRun, Workspace, audit_run,
                             fast_recipe, insights_run, original_metrics, pool_outputs, reference_run, unlearn_run)

__all__ = [
    # data and forget sets
    "DATASET_NAMES", "ImageDataset", "load_dataset", "from_arrays", "augment", "to_float",
    "ForgetSpec", "DataSplit", "make_split", "training_indices", "validation_indices",
    # models, training and checkpoints
    "ARCHITECTURES", "ModelSpec", "build_model", "spec_for",
    "RECIPES", "TrainRecipe", "Outputs", "train_model", "predict", "place", "seed_everything",
    "resolve_device", "device_name",
    "CheckpointError", "save_checkpoint", "load_checkpoint", "load_state_file", "read_sidecar", "write_json_atomic",
    "json_default", "versions", "ModelCheck", "check_model", "size_text",
    # the original model and Retrain references
    "load_original", "original_path", "train_from_scratch", "train_and_save", "retrain",
    "find_reference", "reference_path", "computed_reference_path", "locate_reference", "reference_metrics",
    "gap_scores", "reference_scores_for", "train_reference",
    # unlearning methods
    "METHODS", "MethodInfo", "MethodConfig", "ConfigField", "UnlearnResult", "config_fields", "make_config",
    "setting_defaults", "form_defaults", "fit_linear_probe", "train_simclr",
    # progress
    "Progress", "ProgressCallback", "StopCheck", "SHUTDOWN", "RunCancelled", "RunDiverged",
    # evaluation and metrics
    "Evaluation", "SplitOutputs", "evaluate", "evaluate_outputs", "split_outputs",
    "GAP_KEYS", "accuracy", "avg_gap", "confusion_matrix", "mean_and_std", "per_class_accuracy",
    "mia_efficacy", "true_label_confidence", "cross_entropy_loss", "entropy", "modified_entropy",
    # runs: the outcome, the record, the run directory
    "RunOutcome", "run_unlearning",
    "RunRecord", "RECORD_NAME", "PROCESS_TOKEN", "NOT_STARTED", "read_record", "write_record",
    "record_identity", "run_identity", "original_sha256", "device_class",
    "new_run_dir", "save_run", "load_run", "list_runs", "list_records", "fill_in_gaps",
    # background jobs: one call per kind
    "Workspace", "RunRequest", "ReferenceRequest", "AuditRequest", "UnlearnedRun", "unlearn_run", "insights_run",
    "reference_run", "audit_run",
    "pool_outputs", "original_metrics", "fast_recipe",
    # the same jobs on an executor (a Ray cluster): plain values in and out, the models stay on disk
    "Job", "JobFailed", "make_executor", "SavedRun", "remote_job", "remote_unlearn", "remote_insights",
    "remote_reference", "remote_audit",
    # the per-example audit of a finished run (its quick part comes with the insights; audit_run is the deep part)
    "read_audit", "deep_audit_cost", "recipe_of", "noise_floor_for", "DEEP_RUNS", "POPULATION_SIZE",
    # insights: attacks, attributions, feature space, weight maps, score distributions
    "Insights", "InsightsCache", "InsightsConfig", "compute_insights", "fingerprint",
    "ATTACK_SCORES", "COMPARISONS", "ROC_GRID", "Distinguishability", "PrivacyAttacks", "RocCurve",
    "distinguishability", "membership_scores", "roc_curve", "run_attacks", "threshold_attacks",
    "ATTRIBUTION_METHODS", "Attributions", "attribute", "default_attribution_ids", "explain",
    "FeatureSpace", "Projection", "fit_projection", "numba_cache_dir", "project_features", "warm_up",
    "WeightMaps", "block_average", "comparison_ids", "map_weights",
    "score_distributions", "load_score_distributions",
    # the per-example privacy audit (populations of retrained / shadow models)
    "DELTA", "EPSILON_CAP", "ForgettingQuality", "NoiseFloor", "epsilon_limit", "epsilon_points", "example_epsilons",
    "forgetting_quality", "largest_finite_epsilon", "logit_scaled_confidence", "noise_floor",
    "LiraAudit", "lira_audit", "lira_statistic", "tpr_at_fpr",
]
