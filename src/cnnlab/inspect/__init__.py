"""Looking inside a trained CNN. Everything here returns arrays and dataclasses; cnnlab.viz draws them."""

from cnnlab.inspect.attribution import METHODS, Attribution, explain
from cnnlab.inspect.capture import capturing, conv_before, conv_layers, evaluating, feature_maps, named_layers
from cnnlab.inspect.checks import ExplanationChecks, check_explanations
from cnnlab.inspect.experiments import RandomFilters, random_filters
from cnnlab.inspect.filters import Filters, filters
from cnnlab.inspect.health import DeadUnits, TrainingHealth, dead_units, training_health
from cnnlab.inspect.image import Inspection, inspect_image, load_image
from cnnlab.inspect.maximize import Maximized, maximize

__all__ = [
    "METHODS",
    "Attribution",
    "DeadUnits",
    "ExplanationChecks",
    "Filters",
    "Inspection",
    "Maximized",
    "RandomFilters",
    "TrainingHealth",
    "capturing",
    "check_explanations",
    "conv_before",
    "conv_layers",
    "dead_units",
    "evaluating",
    "explain",
    "feature_maps",
    "filters",
    "inspect_image",
    "load_image",
    "maximize",
    "named_layers",
    "random_filters",
    "training_health",
]
