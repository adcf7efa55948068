"""The masked-LM loss as a bert4keras Loss layer."""
import tensorflow as tf

from pet_keras import compat  # noqa: F401
from bert4keras.layers import Loss


class MaskedLMLoss(Loss):
    """Cross-entropy over predicted positions, with their accuracy as a metric.

    Inputs: ``[targets, logits]``; targets (batch, n) are token ids, 0 where
    nothing is predicted; logits (batch, n, vocab).

    Under tf.distribute each replica sees part of the batch, and Keras
    averages the replicas' losses: each divides its sum by the whole batch's
    count of predicted tokens (times the replicas), so the average is the
    mean over the whole batch, as on one device, whatever each part holds.
    """

    def compute_loss(self, inputs, mask=None):
        targets, logits = inputs
        weights = tf.cast(tf.not_equal(targets, 0), logits.dtype)
        count = tf.reduce_sum(weights)
        replica = tf.distribute.get_replica_context()  # None while the model is built under a strategy
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        if replicas > 1:
            count = replica.all_reduce('sum', count) / replicas
        count = tf.maximum(count, 1.0 / replicas)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, 'int32'), logits)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type='int32'), tf.cast(targets, 'int32')), logits.dtype)
        self.add_metric(tf.reduce_sum(hits * weights) / count, name='accuracy')
        return tf.reduce_sum(loss * weights) / count
