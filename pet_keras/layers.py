"""The Keras layers PET's models add to the bert4keras transformer.

- ``GatherPositions``: the encoder (or any per-position tensor) at given
  positions;
- ``LabelTokenLogits``: the MLM logits of the label tokens only, from the
  slot's hidden states (tied embeddings + output bias);
- ``LabelColumns``: each label word's summed column of per-slot-position
  scores (vocabulary logits or log-softmaxes);
- ``MaskedLMLoss``: the masked-LM loss as a bert4keras ``Loss`` layer;
- ``PetLoss``: that loss on PET's batches, the slot trained by one of
  ``budget.SLOT_LOSSES``.
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
        count = self.batch_count(tf.reduce_sum(weights))
        self.add_metric(token_hits(targets, logits, weights) / count, name='accuracy')
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, 'int32'), logits)
        return tf.reduce_sum(loss * weights) / count

    @staticmethod
    def batch_count(count):
        """``count`` (this replica's number of loss terms) as the divisor that makes the
        replicas' averaged losses the whole batch's mean."""
        replica = tf.distribute.get_replica_context()  # None while the model is built under a strategy
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        if replicas > 1:
            count = replica.all_reduce('sum', count) / replicas
        return tf.maximum(count, 1.0 / replicas)


def token_hits(targets, logits, weights):
    """How many of the weighted positions' likeliest tokens are their targets."""
    hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type='int32'), tf.cast(targets, 'int32')), logits.dtype)
    return tf.reduce_sum(hits * weights)


NOT_A_MEMBER = -1e4  # added to the scores of another label's words: finite, so no gradient is NaN


class PetLoss(MaskedLMLoss):
    """``MaskedLMLoss`` on PET batches, whose slot trains by ``slot_loss``:

    - ``mlm``: the gold word's full-vocabulary masked-LM loss, as every other
      predicted token (the reference);
    - ``labels``: cross-entropy over the labels (timoschick/pet), a label's
      score the log of its words' summed probabilities;
    - ``decoupled``: ADAPET's decoupled label loss (Tam et al. 2021),
      −log p(gold word) − Σ log(1 − p(word)) over the other labels' words,
      p a word's full-vocabulary probability at the slot.

    A word's log-probability is the sum of its tokens' log-softmaxes; the label
    losses need words of one length (``budget.check_slot_loss``), read from one
    cloze. The random extra masks keep the masked-LM loss, and a labeled row's
    slot counts as one term of the mean with them.

    Inputs: ``[targets, words, logits]``; ``words`` (batch,) is the index of
    the row's gold word (``PVP.word_ids``), −1 for a row without one, whose
    slot positions come first among its predicted positions."""

    def __init__(self, slot_loss, word_ids, word_label, **kwargs):
        super().__init__(**kwargs)
        self.slot_loss = slot_loss
        self.word_length = np.array([len(ids) for ids in word_ids], dtype='int32')
        self.word_label = np.asarray(word_label, dtype='int32')
        if slot_loss != 'mlm':
            self.word_table = np.array(word_ids, dtype='int32')  # (words, length): one length

    def compute_loss(self, inputs, mask=None):
        targets, words, logits = inputs
        if self.slot_loss == 'mlm':
            return super().compute_loss([targets, logits], mask)
        words = tf.cast(words, 'int32')
        gold = tf.maximum(words, 0)
        labeled = tf.cast(words >= 0, logits.dtype)
        predicted = tf.cast(tf.not_equal(targets, 0), logits.dtype)
        accuracy = token_hits(targets, logits, predicted) / self.batch_count(tf.reduce_sum(predicted))
        self.add_metric(accuracy, name='accuracy')
        slot = tf.cast(tf.range(tf.shape(targets)[1]) < self.word_table.shape[1], logits.dtype)
        others = predicted * (1 - labeled[:, None] * slot[None])
        token_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(targets, 'int32'), logits)
        total = tf.reduce_sum(token_loss * others) + tf.reduce_sum(self.slot_losses(logits, gold) * labeled)
        return total / self.batch_count(tf.reduce_sum(others) + tf.reduce_sum(labeled))

    def slot_losses(self, logits, gold):
        """Each row's slot loss (batch,), as if every row held its ``gold`` word at the slot."""
        length = self.word_table.shape[1]
        log_probs = tf.nn.log_softmax(logits[:, :length])  # (batch, length, vocab)
        word_scores = tf.add_n([tf.gather(log_probs[:, s], self.word_table[:, s], axis=1) for s in range(length)])
        gold_label = tf.gather(self.word_label, gold)
        if self.slot_loss == 'labels':
            member = tf.one_hot(self.word_label, int(self.word_label.max()) + 1, dtype=logits.dtype)  # (words, labels)
            by_label = word_scores[:, :, None] + (1 - member[None]) * NOT_A_MEMBER
            return tf.nn.sparse_softmax_cross_entropy_with_logits(gold_label, tf.reduce_logsumexp(by_label, axis=1))
        rival = tf.not_equal(tf.constant(self.word_label)[None], gold_label[:, None])
        gold_score = tf.gather(word_scores, gold, batch_dims=1)
        # log(1 - p) from log p; p below 1 so the log stays finite
        not_word = tf.math.log(-tf.math.expm1(tf.minimum(word_scores, -1e-6)))
        return -gold_score - tf.reduce_sum(tf.where(rival, not_word, 0.0), axis=1)
