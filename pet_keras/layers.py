"""The Keras layers PET's models add to the bert4keras transformer.

- ``GatherPositions``: the encoder (or any per-position tensor) at given
  positions;
- ``LabelTokenLogits``: the MLM logits of the label tokens only, from the
  slot's hidden states (tied embeddings + output bias);
- ``LabelColumns``: each label word's summed column of per-slot-position
  scores (vocabulary logits or log-softmaxes);
- ``MaskedLMLoss``: the masked-LM loss as a bert4keras ``Loss`` layer.
"""

import numpy as np
import tensorflow as tf

from pet_keras import compat  # noqa: F401  (before bert4keras)
from pet_keras.compat import keras
from bert4keras.layers import Loss


class GatherPositions(keras.layers.Layer):
    """``hidden[b, positions[b, i]]``: (batch, length, dim) × (batch, n) → (batch, n, dim)."""

    def call(self, inputs):
        hidden, positions = inputs
        return tf.gather(hidden, tf.cast(positions, 'int32'), batch_dims=1)

    def compute_mask(self, inputs, mask=None):
        return None


class LabelTokenLogits(keras.layers.Layer):
    """MLM logits of the label tokens only.

    ``label_token_ids`` has shape (words, slot_length): word w is read at slot
    position s as token ``label_token_ids[w, s]``. The output (batch, words) is
    each word's summed logit over the slot. Every word of a slot has the same
    length, so this differs from the word's log-probability (the sum of
    log-softmaxes) by the same constant for all words: ratios of word
    probabilities are exact without the vocabulary-wide softmax.
    """

    def __init__(self, embedding_layer, bias_layer, label_token_ids, **kwargs):
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.bias_layer = bias_layer
        self.label_token_ids = np.asarray(label_token_ids, dtype='int32')

    def call(self, slot_hidden):
        ids = tf.constant(self.label_token_ids)  # (words, slot)
        table = tf.gather(self.embedding_layer.embeddings, ids)  # (words, slot, dim)
        bias = tf.gather(self.bias_layer.beta, ids)  # (words, slot)
        logits = tf.einsum('bsd,wsd->bw', slot_hidden, table)
        return logits + tf.reduce_sum(bias, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


class LabelColumns(keras.layers.Layer):
    """Each label word's summed column of per-slot-position scores:
    (batch, slot_length, vocab) → (batch, words). On vocabulary logits it is
    ``LabelTokenLogits``' output; on log-softmaxes, the words' log-probabilities."""

    def __init__(self, label_token_ids, **kwargs):
        super().__init__(**kwargs)
        self.label_token_ids = np.asarray(label_token_ids, dtype='int32')

    def call(self, slot_logits):
        ids = self.label_token_ids
        return tf.add_n([tf.gather(slot_logits[:, s], ids[:, s], axis=1) for s in range(ids.shape[1])])

    def compute_mask(self, inputs, mask=None):
        return None


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
