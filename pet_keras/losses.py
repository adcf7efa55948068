"""The masked-LM loss as a bert4keras Loss layer."""
import tensorflow as tf

from pet_keras import compat  # noqa: F401
from bert4keras.layers import Loss


class MaskedLMLoss(Loss):
    """Cross-entropy over predicted positions, with their accuracy as a metric.

    Inputs: ``[targets, logits]``; targets (batch, n) are token ids, 0 where
    nothing is predicted; logits (batch, n, vocab).
    """

    def compute_loss(self, inputs, mask=None):
        targets, logits = inputs
        weights = tf.cast(tf.not_equal(targets, 0), logits.dtype)
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, 'int32'), logits)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type='int32'), tf.cast(targets, 'int32')), logits.dtype)
        self.add_metric(tf.reduce_sum(hits * weights) / count, name='accuracy')
        return tf.reduce_sum(loss * weights) / count
