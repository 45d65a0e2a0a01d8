"""Masked-LM loss averaged over real predictions only (``masked_lm_weights``), NSP loss, metric sums.

Under a distribution strategy each replica returns *sums*; the trainer divides by the global counts
(all-reduced), so the loss is google-research/bert's ``sum(w * nll) / sum(w)`` over the global batch and the
summed gradients are the gradient of that loss.
"""

from __future__ import annotations

import tensorflow as tf

# the order of the metric sums a step returns
SUMS = ("loss", "mlm_nll", "mlm_weight", "mlm_correct", "nsp_nll", "nsp_correct", "examples")


def mlm_sums(logits, labels, weights):
    """(sum of w * nll, sum of w, sum of w * correct) over a batch's prediction slots."""
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_sum(nll * weights), tf.reduce_sum(weights), tf.reduce_sum(correct * weights)


def nsp_sums(logits, labels):
    """(sum of nll, number correct) over a batch (label 1 = random next sentence)."""
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
    return tf.reduce_sum(nll), tf.reduce_sum(correct)


def summarize(sums, steps: int) -> dict:
    """Metrics of a loop from its summed vector (see ``SUMS``)."""
    s = dict(zip(SUMS, [float(x) for x in sums]))
    return {"loss": s["loss"] / max(steps, 1),
            "mlm_loss": s["mlm_nll"] / max(s["mlm_weight"], 1e-5),
            "mlm_accuracy": s["mlm_correct"] / max(s["mlm_weight"], 1e-5),
            "nsp_loss": s["nsp_nll"] / max(s["examples"], 1),
            "nsp_accuracy": s["nsp_correct"] / max(s["examples"], 1),
            "examples": int(s["examples"])}
