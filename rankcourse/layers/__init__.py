"""Building blocks of the ranking models: embeddings, MLPs, interaction layers, experts and gates."""

from .cin import CIN
from .cross import CrossNet, CrossNetMix, CrossNetV2
from .embedding import FieldEmbedding
from .experts import ExpertGate, ParallelMLP
from .fm import FMInteraction, fm_pairwise_bruteforce
from .mlp import MLP, make_activation
from .wide import CrossProductHashing, WideLinear
from .sequence import MeanPooling, SequenceEmbedding, SumPooling, masked_sum
from .attention import (AUGRUCell, Dice, InterestEvolution, LocalActivationUnit, TargetAttentionPooling,
                        TransformerPooling)

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
    "SequenceEmbedding",
    "SumPooling",
    "MeanPooling",
    "masked_sum",
    "Dice",
    "LocalActivationUnit",
    "TargetAttentionPooling",
    "TransformerPooling",
    "AUGRUCell",
    "InterestEvolution",
]
