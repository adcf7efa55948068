"""Using a trained model: prediction and SavedModel export.

``load`` opens a run folder written by ``fit_pet`` (or ``fit_classifier``)
for prediction (``.predict(texts)``); ``export_saved_model`` writes it as a
TensorFlow SavedModel for serving. PET models go through
``pet_keras.scoring.Scorer``: there is one scoring path.
"""

import json
import os

import numpy as np
import tensorflow as tf

from pet_keras.io import atomic_folder, read_json, refuse_overwriting_inputs
from pet_keras.classifier import CLASSIFIER_SPEC, CLASSIFIER_WEIGHTS, ClassifierScorer, build_classifier
from pet_keras.data import Example
from pet_keras.lexical import LEXICAL_SPEC, LexicalModel, Mixture
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import PVP
from pet_keras.scoring import Scorer

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
        self.described = (
            'fields %s' % ', '.join(self.fields) if self.pvp is None else 'pattern %r' % self.pvp.pattern.template
        )

    def examples(self, texts):
        """Examples from strings (single-field patterns) or dicts of the
        pattern's fields; their source is "input:<1-based index>"."""
        examples = []
        for number, item in enumerate(texts, 1):
            source = 'input:%d' % number
            if isinstance(item, str):
                if len(self.fields) != 1:
                    raise ValueError(
                        '%s: the model reads fields %s: pass a dict with these keys, not a string'
                        % (source, ', '.join(self.fields))
                    )
                fields = {self.fields[0]: item}
            elif isinstance(item, dict):
                missing = [name for name in self.fields if not isinstance(item.get(name), str)]
                if missing:
                    raise ValueError(
                        '%s: expected a string for field %s of %s, got %r'
                        % (source, ', '.join(missing), self.described, item)
                    )
                fields = {name: item[name] for name in self.fields}
            else:
                raise TypeError(
                    '%s: expected a string or a dict of fields (%s), got %s'
                    % (source, ', '.join(self.fields), type(item).__name__)
                )
            examples.append(Example(fields, None, source))
        return examples

    def predict_examples(self, examples, verbose=False):
        """[{'label': best label, 'probabilities': {label: p}}] for examples."""
        probs = self.scorer.predict_proba(examples, verbose)
        return [
            {
                'label': self.labels[int(np.argmax(row))],
                'probabilities': {label: float(p) for label, p in zip(self.labels, row)},
            }
            for row in probs
        ]

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
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(
            '%s: no such folder (expected a run folder written by fit_pet or fit_classifier)' % model_dir
        )
    is_classifier = os.path.isfile(os.path.join(model_dir, CLASSIFIER_SPEC))
    needed = ('bert_config.json', CLASSIFIER_WEIGHTS, 'vocab.txt', CLASSIFIER_SPEC) if is_classifier else RUN_FILES
    missing = [name for name in needed if not os.path.isfile(os.path.join(model_dir, name))]
    if missing:
        raise FileNotFoundError(
            '%s: not a pet_keras run folder, missing %s (fit_pet writes %s; fit_classifier %s)'
            % (
                model_dir,
                ', '.join(missing),
                ', '.join(RUN_FILES),
                ', '.join(('bert_config.json', CLASSIFIER_WEIGHTS, 'vocab.txt', CLASSIFIER_SPEC)),
            )
        )
    results_path = os.path.join(model_dir, 'results.json')
    results = recorded_results(results_path)
    config_path = os.path.join(model_dir, 'bert_config.json')
    dict_path = os.path.join(model_dir, 'vocab.txt')
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)
    if is_classifier:
        return load_classifier(model_dir, tokenizer, batch_size, model)
    if calibrate is None:
        calibrate = results.get('calibrate', False)
    if model is None:
        model = results.get('settings', {}).get('model') or 'bert'
    return load_pet(model_dir, tokenizer, batch_size, calibrate, model)


def recorded_results(path):
    """What ``load`` reads of a run's results.json ({} without one), type-checked: a hand-edited
    ``"calibrate": "no"`` must not read as true."""
    if not os.path.isfile(path):
        return {}
    results = read_json(path)
    problem = None
    if not isinstance(results, dict):
        problem = 'expected a JSON object, found %s' % type(results).__name__
    elif not isinstance(results.get('calibrate', False), bool):
        problem = '"calibrate" is %s; expected true or false' % json.dumps(results['calibrate'])
    elif not isinstance(results.get('settings', {}), dict):
        problem = '"settings" is %s; expected an object' % json.dumps(results['settings'], ensure_ascii=False)[:40]
    elif not isinstance(results.get('settings', {}).get('model', 'bert') or 'bert', str):
        problem = '"settings.model" is not a model family name'
    if problem:
        raise ValueError(
            '%s: %s (restore the file the run wrote, or pass --calibrate/--no-calibrate)' % (path, problem)
        )
    return results


def load_pet(model_dir, tokenizer, batch_size, calibrate, model):
    pvp_path = os.path.join(model_dir, 'pvp.json')
    spec = read_json(pvp_path)
    try:
        pvp = PVP.from_json(spec, tokenizer)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            '%s: expected {"pattern", "label_words", "aggregation", "maxlen"} (%s: %s)'
            % (pvp_path, type(e).__name__, e)
        ) from None
    except ValueError as e:  # a value the pattern or verbalizer refuses (e.g. an unknown aggregation)
        raise ValueError('%s: %s (restore the file the run wrote)' % (pvp_path, e)) from None
    mlm = build_mlm(
        os.path.join(model_dir, 'bert_config.json'),
        os.path.join(model_dir, 'bert_model.ckpt'),
        model=model,
        dict_path=os.path.join(model_dir, 'vocab.txt'),
    )
    scorer = Scorer(mlm, pvp, batch_size=batch_size, calibrate=calibrate)
    if os.path.isfile(os.path.join(model_dir, LEXICAL_SPEC)):  # a run with the lexical expert
        scorer = Mixture(scorer, *LexicalModel.load(model_dir, pvp.pattern.fields))
    return Predictor(model_dir, scorer, pvp.pattern.fields)


def load_classifier(model_dir, tokenizer, batch_size, model):
    spec_path = os.path.join(model_dir, CLASSIFIER_SPEC)
    spec = read_json(spec_path)

    def strings(value):
        return isinstance(value, list) and value and all(isinstance(v, str) for v in value)

    if not (
        isinstance(spec, dict)
        and strings(spec.get('labels'))
        and strings(spec.get('fields'))
        and isinstance(spec.get('maxlen'), int)
        and isinstance(spec.get('model', 'bert') or 'bert', str)
    ):
        raise ValueError(
            '%s: expected {"labels": [strings], "fields": [strings], "maxlen": N, "model": family} '
            '(restore the file the run wrote)' % spec_path
        )
    classifier = build_classifier(
        os.path.join(model_dir, 'bert_config.json'),
        None,
        len(spec['labels']),
        model=model or spec.get('model') or 'bert',
    )
    weights_path = os.path.join(model_dir, CLASSIFIER_WEIGHTS)
    try:
        classifier.load_weights(weights_path)
    except ValueError as e:  # Keras' "Shape mismatch …": the weights and classifier.json/bert_config.json disagree
        raise ValueError(
            '%s does not fit %s (%d labels) and bert_config.json: %s (restore the files the run wrote)'
            % (weights_path, spec_path, len(spec['labels']), str(e).splitlines()[0])
        ) from None
    scorer = ClassifierScorer(classifier, tokenizer, spec['labels'], spec['maxlen'], batch_size)
    return Predictor(model_dir, scorer, spec['fields'])


# ---------------------------------------------------------------- SavedModel export

INPUT_SIGNATURE = [
    tf.TensorSpec([None, None], tf.int32, name='token_ids'),
    tf.TensorSpec([None, None], tf.int32, name='segment_ids'),
]


# Python's str.isspace characters (re's \s in sklearn's whitespace rule) in RE2's syntax, whose \s is ASCII only
WHITESPACE = r'[\x{9}-\x{d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}-\x{2029}\x{202f}\x{205f}\x{3000}]'


class _LexicalScores(tf.Module):
    """A ``lexical.LexicalModel``'s scores in TensorFlow, for a SavedModel: ``self(text)`` is
    (batch, labels) for a batch of texts, as ``LexicalModel.scores`` computes them with
    scikit-learn's char analyzer (lower case, runs of white space as one space, n-grams of
    code points), sublinear term frequency × idf at unit length, and the SVM's weights."""

    def __init__(self, lexical):
        super().__init__()
        vocabulary = list(lexical.vectorizer.vocabulary)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(vocabulary, tf.range(len(vocabulary), dtype=tf.int64)), -1
        )
        # variables, not constants: saved beside the graph, not in it (119 labels × 178k n-grams is 85 MB)
        self.idf = tf.Variable(lexical.vectorizer.idf_, dtype=tf.float32, trainable=False)
        self.coef = tf.Variable(lexical.coef.T, dtype=tf.float32, trainable=False)  # (vocabulary, labels)
        self.intercept = tf.Variable(lexical.intercept, dtype=tf.float32, trainable=False)
        self.scale, self.ngram_range, self.size = lexical.scale, lexical.ngram_range, len(vocabulary)

    def __call__(self, text):
        text = tf.strings.regex_replace(tf.strings.lower(text, encoding='utf-8'), WHITESPACE + '{2,}', ' ')
        chars = tf.strings.unicode_split(text, 'UTF-8')
        low, high = self.ngram_range
        grams = tf.concat([tf.strings.ngrams(chars, n, separator='') for n in range(low, high + 1)], axis=1)
        ids = self.table.lookup(grams.flat_values)
        known = ids >= 0
        rows, ids = tf.boolean_mask(grams.value_rowids(), known), tf.boolean_mask(ids, known)
        # one entry per (row, n-gram) that occurs, with its count
        entries, _, counts = tf.unique_with_counts(rows * self.size + ids)
        rows, ids = entries // self.size, entries % self.size
        values = (1.0 + tf.math.log(tf.cast(counts, tf.float32))) * tf.gather(self.idf, ids)
        batch = tf.shape(text, out_type=tf.int64)[0]
        norms = tf.sqrt(tf.math.unsorted_segment_sum(values * values, rows, batch))
        values /= tf.gather(tf.where(norms > 0, norms, 1.0), rows)
        scores = tf.math.unsorted_segment_sum(values[:, None] * tf.gather(self.coef, ids), rows, batch)
        return (scores + self.intercept) / self.scale


class _Serving(tf.Module):
    """The scorer's model as a SavedModel: signature ``serving_default``
    (token_ids, segment_ids) → {probabilities, label}; for a run with the lexical expert
    (a ``Mixture``), (token_ids, segment_ids, text) → the mixture's."""

    def __init__(self, scorer, model_dir):
        super().__init__()
        pvp = scorer.pvp
        lexical = None
        if isinstance(scorer, Mixture):
            lexical, weight, scorer = _LexicalScores(scorer.lexical), scorer.weight, scorer.scorer
            self.lexical = lexical
        if len(pvp.slot_lengths) > 1:
            raise ValueError(
                'export reads the slot from the [MASK] tokens of one cloze; label words of %s tokens '
                'need one cloze per length: use pet_keras.serving.load(...).predict to serve this model'
                % ', '.join(map(str, pvp.slot_lengths))
            )
        self.model_variables = list(scorer.model.variables)  # tracked: saved with the function
        labels = tf.constant(pvp.labels)
        assets = ('pvp.json', 'vocab.txt') + ((LEXICAL_SPEC,) if lexical else ())
        self.assets = [tf.saved_model.Asset(os.path.join(model_dir, name)) for name in assets]
        # weights are frozen here, so the content-free distribution is a constant
        content_free = tf.constant(scorer.content_free_log_proba()) if scorer.calibrate else None
        mask_id, slot_length = pvp.tokenizer._token_mask_id, pvp.slot_length

        def pet_probabilities(token_ids, segment_ids):
            # the slot is where the pattern put its [MASK] tokens (text never tokenizes to [MASK])
            is_mask = tf.equal(token_ids, mask_id)
            first = tf.argmax(tf.cast(is_mask, tf.int32), axis=1, output_type=tf.int32)
            slots = first[:, None] + tf.range(slot_length)[None]
            ok = tf.logical_and(
                tf.equal(tf.reduce_sum(tf.cast(is_mask, tf.int32), 1), slot_length),
                tf.reduce_all(tf.gather(is_mask, tf.minimum(slots, tf.shape(token_ids)[1] - 1), batch_dims=1), axis=1),
            )
            tf.debugging.Assert(
                tf.reduce_all(ok),
                [
                    'each row must hold the slot of the pattern: %d consecutive [MASK] tokens (id %d); rows without:'
                    % (slot_length, mask_id),
                    tf.where(tf.logical_not(ok))[:, 0],
                ],
            )
            return scorer.probabilities([token_ids, segment_ids, slots], content_free)

        def outputs(probs):
            return {'probabilities': probs, 'label': tf.gather(labels, tf.argmax(probs, axis=1))}

        if lexical is None:

            @tf.function(input_signature=INPUT_SIGNATURE)
            def serve(token_ids, segment_ids):
                return outputs(pet_probabilities(token_ids, segment_ids))

        else:

            @tf.function(input_signature=INPUT_SIGNATURE + [tf.TensorSpec([None], tf.string, name='text')])
            def serve(token_ids, segment_ids, text):
                # lexical.mix: softmax(log p_PET + weight · lexical scores)
                log_probs = tf.math.log(tf.maximum(pet_probabilities(token_ids, segment_ids), 1e-12))
                return outputs(tf.nn.softmax(log_probs + weight * lexical(text), axis=1))

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
    ``label`` (string, [batch]). A run with the lexical expert (lexical.json) takes a
    third input, ``text`` (string, [batch]): each row's fields in lexical.json's "fields"
    order, joined by one space; its probabilities are the mixture's, as ``load`` predicts.
    pvp.json (or classifier.json), vocab.txt and lexical.json are copied into
    ``out_dir/assets/`` so a server can build the inputs.
    Calibration as in ``load``. An ``out_dir`` that is, holds or lies inside
    ``model_dir`` is refused; a non-empty one unless ``overwrite``. The SavedModel
    is written beside ``out_dir`` and renamed over it when complete, so a failed
    export leaves what was there. The signature reads one cloze per row: for a run trained
    with windows (pvp.json "windows"), a server cuts long texts into the same windows
    (``PVP.text_windows``, each window with its whole text) and averages their
    log-probabilities. Returns ``out_dir``."""
    refuse_overwriting_inputs(out_dir, '--out', {'--model-dir': model_dir})
    taken = os.path.exists(out_dir) and not (os.path.isdir(out_dir) and not os.listdir(out_dir))
    if taken and not overwrite:
        raise FileExistsError('%s: exists and is not empty (pet-keras export --overwrite replaces it)' % out_dir)
    predictor = load(model_dir, calibrate=calibrate, model=model)
    module = (_ClassifierServing if predictor.pvp is None else _Serving)(predictor.scorer, model_dir)
    with atomic_folder(out_dir) as tmp:
        tf.saved_model.save(module, tmp, signatures={'serving_default': module.serve})
    return out_dir
