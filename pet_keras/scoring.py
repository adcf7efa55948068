"""Scoring examples with a PVP: label probabilities from the MLM.

``Scorer`` gives label probabilities for examples: the MLM's scores of the
label words at the slot, optionally with contextual calibration
(``calibrated``, with the ``CONTENT_FREE_TEXTS``). ``cloze_batches`` makes its
model inputs. Training (``pet_keras.train``) evaluates with it and serving
(``pet_keras.serving``) predicts with it: there is one scoring path.
"""

import numpy as np
import tensorflow as tf

from pet_keras.compat import keras
from pet_keras.progress import progress_bar
from bert4keras.snippets import sequence_padding
from pet_keras.batching import pad_to_multiple
from pet_keras.data import Example

# Content-free inputs for contextual calibration (Zhao et al. 2021, "Calibrate
# before use"): every text field empty, and every field "N/A"; their label
# probabilities are averaged, as in the paper. The paper's third input,
# "[MASK]", is left out: our tokenizer reads it as the characters [ mask ],
# not as a mask token, so it would be one more arbitrary text.
CONTENT_FREE_TEXTS = ('', 'N/A')


def class_logits(pvp, word_scores):
    """``pvp``'s per-label scores (batch, labels) from per-word log-probabilities
    (batch, words) — or, when every word has one length, the words'
    summed slot logits, which differ from them by one constant per example
    — so their softmax is the label distribution. With ``length_norm`` a
    word's score is divided by its length first.

    ``sum`` → logsumexp of the label's word scores (log of the summed
    probabilities), ``mean`` → their mean, ``max`` → their maximum."""
    if pvp.verbalizer.length_norm:
        word_scores = word_scores / tf.constant(pvp.word_length, dtype=word_scores.dtype)
    member = tf.one_hot(pvp.word_label, len(pvp.labels), dtype=word_scores.dtype)  # (words, labels)
    if pvp.verbalizer.aggregation == 'mean':
        return tf.matmul(word_scores, member) / tf.reduce_sum(member, 0)
    masked = word_scores[:, :, None] + tf.math.log(member)[None]  # -inf off the label
    if pvp.verbalizer.aggregation == 'sum':
        return tf.reduce_logsumexp(masked, axis=1)
    return tf.reduce_max(masked, axis=1)


def calibrated(log_probs, content_free_log_probs):
    """Contextual calibration: p(label | x) / p_cf(label), renormalised.
    Done in log space, so a content-free probability that underflows to 0 in
    float32 cannot make the result infinite."""
    return tf.nn.softmax(log_probs - content_free_log_probs, axis=-1)


def cloze_inputs(clozes, idx):
    """Model inputs of the examples ``idx`` from their encodings ``clozes``
    (one list per slot length): for each slot length, token ids, segment ids
    and slots, lengths padded to a multiple of 8."""
    inputs = []
    for encoded in clozes:
        items = [encoded[i] for i in idx]
        length = pad_to_multiple(max(len(e.token_ids) for e in items))
        inputs += [
            sequence_padding([e.token_ids for e in items], length).astype('int32'),
            sequence_padding([e.segment_ids for e in items], length).astype('int32'),
            np.array([e.slots for e in items], dtype='int32'),
        ]
    return inputs


def cloze_batches(pvp, examples, batch_size):
    """(indices, inputs) batches of examples (``cloze_inputs`` for each of
    ``pvp.slot_lengths``), sorted by length: little padding."""
    clozes = [[pvp.encode(e, length) for e in examples] for length in pvp.slot_lengths]
    longest = clozes[-1]  # the others are shorter by a constant: one order for all
    order = np.argsort([len(e.token_ids) for e in longest], kind='stable')
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield idx, cloze_inputs(clozes, idx)


class Scorer:
    """Label probabilities for examples.

    When every label word has one length, only the label tokens' logits are
    computed at the slot (``MaskedLM.scoring_model``): the label distribution
    is exact without the vocabulary-wide softmax. With words of several
    lengths each example is read from one cloze per length, in one forward
    pass per length per batch, and each word scores its log-probability
    (``MaskedLM.word_log_prob_model``). Examples are batched by length, so
    padding is small. (benchmarks/baselines.py overrides ``batches`` and
    ``word_scores`` to switch these fast paths off, for speed comparisons.)

    With ``calibrate=True`` the probabilities are contextually calibrated:
    divided by the label probabilities the model gives the ``content_free``
    texts (each put in every field of the pattern, averaged), then
    renormalised. These are computed with the model's current weights on
    every call, so calibration follows training.
    """

    def __init__(self, mlm, pvp, batch_size=64, calibrate=False, content_free=CONTENT_FREE_TEXTS):
        max_position = getattr(mlm.transformer, 'max_position', None)
        if max_position is not None and pvp.maxlen > max_position:
            raise ValueError(
                "maxlen %d exceeds the model's %d positions (max_position_embeddings in its config)"
                % (pvp.maxlen, max_position)
            )
        if calibrate and not content_free:
            raise ValueError('calibration needs at least one content-free text')
        self.pvp = pvp
        self.batch_size = batch_size
        self.calibrate = calibrate
        self.content_free = [
            Example({name: text for name in pvp.pattern.fields}, None, 'content-free input %r' % text)
            for text in content_free
        ]
        self.model = self._label_log_probs_model(mlm)
        self._log_proba = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self._proba = tf.function(self.probabilities, reduce_retracing=True)

    def word_scores(self, mlm):
        """(inputs, scores): for each slot length, Keras inputs [token ids,
        segment ids, slots]; each label word's score (batch, words), in the
        verbalizer's word order."""
        pvp = self.pvp
        if len(pvp.slot_lengths) == 1:
            scoring = mlm.scoring_model(pvp.label_token_ids)
            return scoring.inputs, scoring.output
        inputs, parts, order = [], [], []
        for length in pvp.slot_lengths:
            index, ids = pvp.words_of_length(length)
            scoring = mlm.word_log_prob_model(ids, name='pet_word_log_probs_%d' % length)
            x = [
                keras.layers.Input(shape=(None,), dtype='int32', name='Input-Token-%d' % length),
                keras.layers.Input(shape=(None,), dtype='int32', name='Input-Segment-%d' % length),
                keras.layers.Input(shape=(length,), dtype='int32', name='Input-Slots-%d' % length),
            ]
            inputs += x
            parts.append(scoring(x))
            order += index.tolist()
        # back to the verbalizer's word order
        return inputs, keras.layers.Lambda(
            lambda p: tf.gather(tf.concat(p, 1), np.argsort(order), axis=1),
            dtype='float32',
            name='Word-Log-Probabilities',
        )(parts)

    def _label_log_probs_model(self, mlm):
        """A Keras model: for each slot length, its [token ids, segment ids,
        slots] → label log-probabilities (batch, labels)."""
        pvp = self.pvp
        inputs, word_scores = self.word_scores(mlm)
        log_probs = keras.layers.Lambda(
            lambda scores: tf.nn.log_softmax(class_logits(pvp, scores)), dtype='float32', name='Label-Log-Probabilities'
        )(word_scores)
        # inputs: token ids, segment ids, slot positions per slot length; output: (batch, labels) log-probabilities
        return keras.Model(inputs, log_probs, name='pet_classifier')

    def probabilities(self, inputs, content_free_log_probs=None):
        """Label probabilities (batch, labels) of model inputs [token ids,
        segment ids, slots] (per slot length) as tensors; calibrated by the
        given content-free log-probabilities (labels,) when they are given."""
        log_probs = self.model(inputs, training=False)
        if content_free_log_probs is None:
            return tf.exp(log_probs)
        return calibrated(log_probs, content_free_log_probs)

    def batches(self, examples):
        """``cloze_batches`` of examples with this scorer's pattern and batch size."""
        return cloze_batches(self.pvp, examples, self.batch_size)

    def content_free_log_proba(self):
        """log of the mean label distribution of the content-free inputs (labels,),
        with the current weights."""
        log_probs = np.concatenate([self._log_proba(inputs).numpy() for _, inputs in self.batches(self.content_free)])
        return tf.reduce_logsumexp(log_probs, axis=0) - np.log(len(log_probs))

    def predict_proba(self, examples, verbose=True):
        """(examples, labels) probabilities, labels in ``pvp.labels`` order. With the
        pattern's ``windows``, an example read in several windows gets the softmax of the
        mean of its windows' label log-probabilities."""
        windows = [self.pvp.text_windows(e) for e in examples]
        owner = np.repeat(np.arange(len(examples)), [len(w) for w in windows])
        read = [window for example_windows in windows for window in example_windows]
        probs = self.window_proba(read, verbose)
        if len(read) == len(examples):
            return probs
        sums = np.zeros((len(examples), probs.shape[1]))
        np.add.at(sums, owner, np.log(np.clip(probs, 1e-30, None)))
        mean = sums / np.bincount(owner, minlength=len(examples))[:, None]
        mean = np.exp(mean - mean.max(1, keepdims=True))
        return (mean / mean.sum(1, keepdims=True)).astype('float32')

    def window_proba(self, examples, verbose=True):
        """(examples, labels) probabilities, each example read as given (cut to ``maxlen``)."""
        content_free = self.content_free_log_proba() if self.calibrate else None
        probs = np.zeros((len(examples), len(self.pvp.labels)), dtype='float32')
        bar = progress_bar(len(examples), unit_name='example') if verbose else None
        done = 0
        for idx, inputs in self.batches(examples):
            probs[idx] = self._proba(inputs, content_free).numpy()
            done += len(idx)
            if bar:
                bar.update(done)
        return probs

    def accuracy(self, examples, verbose=True):
        labels = [self.pvp._label(e) for e in examples]
        if any(label is None for label in labels):
            raise ValueError('accuracy needs labeled examples')
        probs = self.predict_proba(examples, verbose)
        # a diverged model (non-finite probabilities) gets nothing right
        predicted = np.where(np.isfinite(probs).all(1), probs.argmax(1), -1)
        return float(np.mean(predicted == np.array(labels)))
