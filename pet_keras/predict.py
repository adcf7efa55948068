"""Scoring examples with a PVP, and using a trained model.

``Scorer`` gives label probabilities for examples: the MLM's scores of the
label words at the slot, optionally with contextual calibration. ``load``
opens a run folder written by ``fit_pet`` for prediction (``.predict(texts)``);
``export_saved_model`` writes it as a TensorFlow SavedModel for serving.
Both go through ``Scorer``: there is one scoring path.
"""
import os
import shutil

import numpy as np
import tensorflow as tf

from pet_keras.io import read_json
from pet_keras.compat import keras
from bert4keras.snippets import sequence_padding
from pet_keras.data import Example

# Content-free inputs for contextual calibration (Zhao et al. 2021, "Calibrate
# before use"): every text field empty, and every field "N/A"; their label
# probabilities are averaged, as in the paper. The paper's third input,
# "[MASK]", is left out: our tokenizer reads it as the characters [ mask ],
# not as a mask token, so it would be one more arbitrary text.
CONTENT_FREE_TEXTS = ('', 'N/A')


def calibrated(log_probs, content_free_log_probs):
    """Contextual calibration: p(label | x) / p_cf(label), renormalised.
    Done in log space, so a content-free probability that underflows to 0 in
    float32 cannot make the result infinite."""
    return tf.nn.softmax(log_probs - content_free_log_probs, axis=-1)


def cloze_batches(pvp, examples, batch_size, bucket=True):
    """(indices, inputs) batches of examples: for each of ``pvp.slot_lengths``,
    token ids, segment ids and slots, lengths padded to a multiple of 8.
    ``bucket``: examples sorted by length (little padding), else in order."""
    clozes = [[pvp.encode(e, length) for e in examples] for length in pvp.slot_lengths]
    longest = clozes[-1]  # the others are shorter by a constant: one order for all
    order = np.argsort([len(e.token_ids) for e in longest], kind='stable') if bucket else np.arange(len(longest))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        inputs = []
        for encoded in clozes:
            items = [encoded[i] for i in idx]
            length = -(-max(len(e.token_ids) for e in items) // 8) * 8
            inputs += [sequence_padding([e.token_ids for e in items], length).astype('int32'),
                       sequence_padding([e.segment_ids for e in items], length).astype('int32'),
                       np.array([e.slots for e in items], dtype='int32')]
        yield idx, inputs


class Scorer:
    """Label probabilities for examples.

    When every label word has one length, only the label tokens' logits are
    computed at the slot (``MaskedLM.scoring_model``): the label distribution
    is exact without the vocabulary-wide softmax. With words of several
    lengths each example is read from one cloze per length, in one forward
    pass per length per batch, and each word scores its log-probability
    (``MaskedLM.word_log_prob_model``). Examples are batched by length, so
    padding is small; ``bucket=False`` keeps file order, and
    ``label_tokens_only=False`` reads the label logits from the vocabulary
    logits at every position (``MaskedLM.full_scoring_model``, one length
    only): the same probabilities, for speed comparisons.

    With ``calibrate=True`` the probabilities are contextually calibrated:
    divided by the label probabilities the model gives the ``content_free``
    texts (each put in every field of the pattern, averaged), then
    renormalised. These are computed with the model's current weights on
    every call, so calibration follows training.
    """

    def __init__(self, mlm, pvp, batch_size=64, bucket=True, calibrate=False, content_free=CONTENT_FREE_TEXTS,
                 label_tokens_only=True):
        max_position = getattr(mlm.transformer, 'max_position', None)
        if max_position is not None and pvp.maxlen > max_position:
            raise ValueError('maxlen %d exceeds the model\'s %d positions (max_position_embeddings in its config)'
                             % (pvp.maxlen, max_position))
        if calibrate and not content_free:
            raise ValueError('calibration needs at least one content-free text')
        self.pvp = pvp
        self.batch_size = batch_size
        self.bucket = bucket
        self.calibrate = calibrate
        self.content_free = [Example({name: text for name in pvp.pattern.fields}, None, 'content-free input %r' % text)
                             for text in content_free]
        self.model = self._label_log_probs_model(mlm, label_tokens_only)
        self._log_proba = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self._proba = tf.function(self.probabilities, reduce_retracing=True)

    def _label_log_probs_model(self, mlm, label_tokens_only):
        """A Keras model: for each slot length, its [token ids, segment ids,
        slots] → label log-probabilities (batch, labels)."""
        pvp = self.pvp
        if len(pvp.slot_lengths) == 1:
            scoring = (mlm.scoring_model if label_tokens_only else mlm.full_scoring_model)(pvp.label_token_ids)
            inputs, word_scores = scoring.inputs, scoring.output
        else:
            inputs, parts, order = [], [], []
            for length in pvp.slot_lengths:
                index, ids = pvp.words_of_length(length)
                scoring = mlm.word_log_prob_model(ids, name='pet_word_log_probs_%d' % length)
                x = [keras.layers.Input(shape=(None,), dtype='int32', name='Input-Token-%d' % length),
                     keras.layers.Input(shape=(None,), dtype='int32', name='Input-Segment-%d' % length),
                     keras.layers.Input(shape=(length,), dtype='int32', name='Input-Slots-%d' % length)]
                inputs += x
                parts.append(scoring(x))
                order += index.tolist()
            # back to the verbalizer's word order
            word_scores = keras.layers.Lambda(lambda p: tf.gather(tf.concat(p, 1), np.argsort(order), axis=1),
                                              dtype='float32', name='Word-Log-Probabilities')(parts)
        log_probs = keras.layers.Lambda(lambda scores: tf.nn.log_softmax(pvp.class_logits(scores)),
                                        dtype='float32', name='Label-Log-Probabilities')(word_scores)
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
        """``cloze_batches`` of examples with this scorer's pattern, batch size and order."""
        return cloze_batches(self.pvp, examples, self.batch_size, self.bucket)

    def content_free_log_proba(self):
        """log of the mean label distribution of the content-free inputs (labels,),
        with the current weights."""
        log_probs = np.concatenate([self._log_proba(inputs).numpy() for _, inputs in self.batches(self.content_free)])
        return tf.reduce_logsumexp(log_probs, axis=0) - np.log(len(log_probs))

    def predict_proba(self, examples, verbose=True):
        """(examples, labels) probabilities, labels in ``pvp.labels`` order."""
        content_free = self.content_free_log_proba() if self.calibrate else None
        probs = np.zeros((len(examples), len(self.pvp.labels)), dtype='float32')
        bar = keras.utils.Progbar(len(examples), unit_name='example') if verbose else None
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


# ---------------------------------------------------------------- a trained model

RUN_FILES = ('bert_config.json', 'bert_model.ckpt.index', 'vocab.txt', 'pvp.json')


class Predictor:
    """A trained PET model ready to predict (made by ``load``).

    ``labels`` are the label names in probability order, ``fields`` the
    input's text fields (``['text']``, or e.g. ``['a', 'b']`` for pairs).
    ``scorer`` is a PET ``Scorer`` (``pvp`` its pattern-verbalizer pair) or a
    ``classifier.ClassifierScorer`` (``pvp`` None).
    """

    def __init__(self, model_dir, scorer, fields):
        self.model_dir = model_dir
        self.scorer = scorer
        self.pvp = getattr(scorer, 'pvp', None)
        self.labels = list(scorer.labels) if self.pvp is None else list(self.pvp.labels)
        self.fields = list(fields)
        self.described = 'fields %s' % ', '.join(self.fields) if self.pvp is None \
            else 'pattern %r' % self.pvp.pattern.template

    def examples(self, texts):
        """Examples from strings (single-field patterns) or dicts of the
        pattern's fields; their source is "input:<1-based index>"."""
        examples = []
        for number, item in enumerate(texts, 1):
            source = 'input:%d' % number
            if isinstance(item, str):
                if len(self.fields) != 1:
                    raise ValueError('%s: the model reads fields %s: pass a dict with these keys, not a string'
                                     % (source, ', '.join(self.fields)))
                fields = {self.fields[0]: item}
            elif isinstance(item, dict):
                missing = [name for name in self.fields if not isinstance(item.get(name), str)]
                if missing:
                    raise ValueError('%s: expected a string for field %s of %s, got %r'
                                     % (source, ', '.join(missing), self.described, item))
                fields = {name: item[name] for name in self.fields}
            else:
                raise TypeError('%s: expected a string or a dict of fields (%s), got %s'
                                % (source, ', '.join(self.fields), type(item).__name__))
            examples.append(Example(fields, None, source))
        return examples

    def predict_examples(self, examples, verbose=False):
        """[{'label': best label, 'probabilities': {label: p}}] for examples."""
        probs = self.scorer.predict_proba(examples, verbose)
        return [{'label': self.labels[int(np.argmax(row))],
                 'probabilities': {label: float(p) for label, p in zip(self.labels, row)}} for row in probs]

    def predict(self, texts, verbose=False):
        """Predictions for a list of texts: strings when the pattern has one
        field, else dicts of its fields (e.g. ``{'a': …, 'b': …}``). Each is
        ``{'label': best label, 'probabilities': {label: p}}``. An empty
        string is scored like any other text (the pattern with the field empty)."""
        return self.predict_examples(self.examples(texts), verbose)


def load(model_dir, batch_size=64, calibrate=None, model=None):
    """A ``Predictor`` for a run folder written by ``fit_pet`` (bert_config.json,
    bert_model.ckpt.*, vocab.txt, pvp.json) or by ``fit_classifier``
    (bert_config.json, classifier_weights.h5, vocab.txt, classifier.json);
    results.json when present.

    ``calibrate=None`` calibrates as the run did (``calibrate`` in results.json,
    off when absent; PET only); ``model=None`` uses the model family the run
    recorded (``settings.model`` in results.json, else ``bert``).
    """
    from pet_keras.classifier import CLASSIFIER_SPEC, CLASSIFIER_WEIGHTS  # classifier imports train, train this
    from pet_keras.model import load_config, load_tokenizer

    if not os.path.isdir(model_dir):
        raise FileNotFoundError('%s: no such folder (expected a run folder written by fit_pet or fit_classifier)'
                                % model_dir)
    is_classifier = os.path.isfile(os.path.join(model_dir, CLASSIFIER_SPEC))
    needed = ('bert_config.json', CLASSIFIER_WEIGHTS, 'vocab.txt', CLASSIFIER_SPEC) if is_classifier else RUN_FILES
    missing = [name for name in needed if not os.path.isfile(os.path.join(model_dir, name))]
    if missing:
        raise FileNotFoundError('%s: not a pet_keras run folder, missing %s (fit_pet writes %s; fit_classifier %s)'
                                % (model_dir, ', '.join(missing), ', '.join(RUN_FILES),
                                   ', '.join(('bert_config.json', CLASSIFIER_WEIGHTS, 'vocab.txt', CLASSIFIER_SPEC))))
    results_path = os.path.join(model_dir, 'results.json')
    results = read_json(results_path) if os.path.isfile(results_path) else {}
    config_path = os.path.join(model_dir, 'bert_config.json')
    dict_path = os.path.join(model_dir, 'vocab.txt')
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)
    if is_classifier:
        return load_classifier(model_dir, tokenizer, batch_size, model)
    if calibrate is None:
        calibrate = bool(results.get('calibrate', False))
    if model is None:
        model = (results.get('settings') or {}).get('model') or 'bert'
    return load_pet(model_dir, tokenizer, batch_size, calibrate, model)


def load_pet(model_dir, tokenizer, batch_size, calibrate, model):
    from pet_keras.model import build_mlm
    from pet_keras.pattern import PVP

    pvp_path = os.path.join(model_dir, 'pvp.json')
    spec = read_json(pvp_path)
    try:
        pvp = PVP.from_json(spec, tokenizer)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError('%s: expected {"pattern", "label_words", "aggregation", "maxlen"} (%s: %s)'
                         % (pvp_path, type(e).__name__, e)) from None
    mlm = build_mlm(os.path.join(model_dir, 'bert_config.json'), os.path.join(model_dir, 'bert_model.ckpt'),
                    model=model, dict_path=os.path.join(model_dir, 'vocab.txt'))
    return Predictor(model_dir, Scorer(mlm, pvp, batch_size=batch_size, calibrate=calibrate), pvp.pattern.fields)


def load_classifier(model_dir, tokenizer, batch_size, model):
    from pet_keras.classifier import CLASSIFIER_SPEC, CLASSIFIER_WEIGHTS, ClassifierScorer, build_classifier

    spec_path = os.path.join(model_dir, CLASSIFIER_SPEC)
    spec = read_json(spec_path)
    if not (isinstance(spec, dict) and isinstance(spec.get('labels'), list) and isinstance(spec.get('fields'), list)
            and isinstance(spec.get('maxlen'), int)):
        raise ValueError('%s: expected {"labels": [...], "fields": [...], "maxlen": N, "model": family}' % spec_path)
    classifier = build_classifier(os.path.join(model_dir, 'bert_config.json'), None, len(spec['labels']),
                                  model=model or spec.get('model') or 'bert')
    classifier.load_weights(os.path.join(model_dir, CLASSIFIER_WEIGHTS))
    scorer = ClassifierScorer(classifier, tokenizer, spec['labels'], spec['maxlen'], batch_size)
    return Predictor(model_dir, scorer, spec['fields'])


# ---------------------------------------------------------------- SavedModel export

INPUT_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name='token_ids'),
                   tf.TensorSpec([None, None], tf.int32, name='segment_ids')]


class _Serving(tf.Module):
    """The scorer's model as a SavedModel: signature ``serving_default``
    (token_ids, segment_ids) → {probabilities, label}."""

    def __init__(self, scorer, model_dir):
        super().__init__()
        pvp = scorer.pvp
        if len(pvp.slot_lengths) > 1:
            raise ValueError('export reads the slot from the [MASK] tokens of one cloze; label words of %s tokens '
                             'need one cloze per length: use pet_keras.predict.load(...).predict to serve this model'
                             % ', '.join(map(str, pvp.slot_lengths)))
        self.model_variables = list(scorer.model.variables)  # tracked: saved with the function
        labels = tf.constant(pvp.labels)
        self.assets = [tf.saved_model.Asset(os.path.join(model_dir, name)) for name in ('pvp.json', 'vocab.txt')]
        # weights are frozen here, so the content-free distribution is a constant
        content_free = tf.constant(scorer.content_free_log_proba()) if scorer.calibrate else None
        mask_id, slot_length = pvp.tokenizer._token_mask_id, pvp.slot_length

        @tf.function(input_signature=INPUT_SIGNATURE)
        def serve(token_ids, segment_ids):
            # the slot is where the pattern put its [MASK] tokens (text never tokenizes to [MASK])
            is_mask = tf.equal(token_ids, mask_id)
            first = tf.argmax(tf.cast(is_mask, tf.int32), axis=1, output_type=tf.int32)
            slots = first[:, None] + tf.range(slot_length)[None]
            ok = tf.logical_and(tf.equal(tf.reduce_sum(tf.cast(is_mask, tf.int32), 1), slot_length),
                                tf.reduce_all(tf.gather(is_mask, tf.minimum(slots, tf.shape(token_ids)[1] - 1),
                                                        batch_dims=1), axis=1))
            tf.debugging.Assert(tf.reduce_all(ok), [
                'each row must hold the slot of the pattern: %d consecutive [MASK] tokens (id %d); rows without:'
                % (slot_length, mask_id), tf.where(tf.logical_not(ok))[:, 0]])
            probs = scorer.probabilities([token_ids, segment_ids, slots], content_free)
            return {'probabilities': probs, 'label': tf.gather(labels, tf.argmax(probs, axis=1))}

        self.serve = serve


class _ClassifierServing(tf.Module):
    """A classifier's model as a SavedModel: signature ``serving_default``
    (token_ids, segment_ids) → {probabilities, label}."""

    def __init__(self, scorer, model_dir):
        super().__init__()
        self.model_variables = list(scorer.model.variables)
        labels = tf.constant(scorer.labels)
        self.assets = [tf.saved_model.Asset(os.path.join(model_dir, name)) for name in ('classifier.json', 'vocab.txt')]

        @tf.function(input_signature=INPUT_SIGNATURE)
        def serve(token_ids, segment_ids):
            probs = scorer.model([token_ids, segment_ids], training=False)
            return {'probabilities': probs, 'label': tf.gather(labels, tf.argmax(probs, axis=1))}

        self.serve = serve


def export_saved_model(model_dir, out_dir, calibrate=None, model=None, overwrite=False):
    """Write the run folder ``model_dir`` as a TensorFlow SavedModel in
    ``out_dir``. Its ``serving_default`` signature takes ``token_ids`` and
    ``segment_ids`` (int32, [batch, length], padded with 0), finds the slot
    from the [MASK] tokens (PET), and returns ``probabilities`` (float32,
    [batch, labels], in the label order of pvp.json or classifier.json) and
    ``label`` (string, [batch]). pvp.json (or classifier.json) and vocab.txt
    are copied into ``out_dir/assets/`` so a server can build the inputs.
    Calibration as in ``load``. A non-empty ``out_dir`` is refused unless
    ``overwrite``, which removes it first. Returns ``out_dir``."""
    taken = os.path.exists(out_dir) and not (os.path.isdir(out_dir) and not os.listdir(out_dir))
    if taken and not overwrite:
        raise FileExistsError('%s: exists and is not empty (pet-keras export --overwrite replaces it)' % out_dir)
    predictor = load(model_dir, calibrate=calibrate, model=model)
    module = (_ClassifierServing if predictor.pvp is None else _Serving)(predictor.scorer, model_dir)
    if taken and os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    elif taken:
        os.remove(out_dir)
    tf.saved_model.save(module, out_dir, signatures={'serving_default': module.serve})
    return out_dir
