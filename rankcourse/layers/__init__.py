"""Building blocks of the ranking models: embeddings, MLPs, interaction layers, experts and gates."""

from .cin import CIN
from .cross import CrossNet, CrossNetMix, CrossNetV2
from .embedding import FieldEmbedding
from .experts import ExpertGate, ParallelMLP
from .fm import FMInteraction, fm_pairwise_bruteforce
from .mlp import MLP, make_activation
from .wide import CrossProductHashing, WideLinear

__all__ = [
    "FieldEmbedding",
    "MLP",
    "make_activation",
    "FMInteraction",
    "fm_pairwise_bruteforce",
    "CrossProductHashing",
    "WideLinear",
    "CrossNet",
    "CrossNetV2",
    "CrossNetMix",
    "CIN",
    "ExpertGate",
    "ParallelMLP",
]
