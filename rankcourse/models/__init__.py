"""Ranking models. Every model maps ``(dense (B, n_dense), sparse (B, n_fields))`` to logits:
``(B,)`` for single-task models, ``(B, n_tasks)`` for SharedBottom/OMoE/MMoE."""

from .base import CTRModel, deep_input
from .dcn import DCN, DCNv2
from .deepfm import DeepFM
from .linear import FactorizationMachine, LogisticRegression
from .multitask import MMoE, OMoE, SharedBottom
from .wide_deep import DeepTower, WideDeep
from .xdeepfm import XDeepFM
from .sequence import BST, DIN, BehaviourRanker

__all__ = [
    "CTRModel",
    "deep_input",
    "LogisticRegression",
    "FactorizationMachine",
    "WideDeep",
    "DeepTower",
    "DeepFM",
    "DCN",
    "DCNv2",
    "XDeepFM",
    "SharedBottom",
    "OMoE",
    "MMoE",
    "BehaviourRanker",
    "DIN",
    "BST",
]
