"""The package's own code that answers an exercise, by check: calling it from a graded answer
makes the verdict ``uses-reference`` (besides every function of :mod:`rankcourse.exercises`).

A new exercise whose answer the package already implements adds its check here. A class stands
for all the methods it defines.
"""

from __future__ import annotations

PACKAGE_ANSWERS: dict[str, tuple[str, ...]] = {
    "check_focal_grad": ("rankcourse.losses.focal_grad", "rankcourse.losses.focal_loss"),
    # With validate=False they take the smoothed target as the label: p - t is bce_grad's p - y.
    "check_smoothed_bce_grad": ("rankcourse.losses.bce_grad", "rankcourse.losses.bce_with_logits"),
    "check_cross_ids": ("rankcourse.layers.wide.CrossProductHashing",),
    # The chapter gives the closed-form weight (rankcourse.ftrl.ftrl_weight); the step is the exercise.
    "check_ftrl_step": ("rankcourse.ftrl.ftrl_step", "rankcourse.ftrl.FTRLProximal"),
    "check_fm_interaction": ("rankcourse.layers.fm.FMInteraction", "rankcourse.layers.fm.fm_pairwise_bruteforce"),
    "check_cin_layer": ("rankcourse.layers.cin.CIN",),
    "check_cin_weight_gradient": ("rankcourse.layers.cin.CIN",),
    # Autograd through the package's one-layer cross network gives the Jacobian.
    "check_first_layer_jacobian": ("rankcourse.layers.cross.CrossNetV2",),
    "check_encode_categorical": ("rankcourse.datasets._common.Vocabulary",),
    "check_din_pooling": ("rankcourse.layers.attention.TargetAttentionPooling",),
    "check_behaviour_pooling": ("rankcourse.layers.attention.TargetAttentionPooling",),
    "check_gauc": ("rankcourse.group_metrics.gauc", "rankcourse.group_metrics.per_user_auc"),
    "check_augru_step": ("rankcourse.layers.attention.AUGRUCell",),
    # The serving engine splits the FM term the same way; the full-row FM layer gives the same values.
    "check_shared_fm": ("rankcourse.serving.engines.SharedDeepFM", "rankcourse.layers.fm.FMInteraction"),
    # sigmoid(logit(p) + log keep) is the corrected probability.
    "check_corrected_probability": ("rankcourse.serving.scorer.corrected_probability",),
    # The package's cross network gives x1 (the once-per-request vector is one line beside it).
    "check_cross_once": ("rankcourse.layers.cross.CrossNetV2",),
}
