"""A plain sequence classifier on the same backbone: [CLS] → dense → softmax.

It is the baseline PET is compared with (fine-tuned on the same few labels)
and the student of distillation, trained on an ensemble's soft labels. Targets
are label distributions, so hard labels (one-hot) and soft labels go through
one loss, the categorical cross-entropy.
"""

import os
import time

import numpy as np
import tensorflow as tf

from pet_keras import budget, runlock
from pet_keras.batching import pad_to_multiple
from pet_keras.compat import keras
from pet_keras.io import write_json, write_text
from pet_keras.loop import budget_record, chosen_step, print_outcome, train_and_keep_best
from pet_keras.progress import progress_bar
from pet_keras.model import load_checkpoint_weights, load_config
from bert4keras.models import build_transformer_model
from bert4keras.optimizers import Adam
from bert4keras.snippets import DataGenerator, sequence_padding

CLASSIFIER_WEIGHTS = 'classifier_weights.h5'  # Keras h5 by layer name: the backbone and the dense layer
CLASSIFIER_SPEC = 'classifier.json'  # labels, input fields, maxlen, model family: what load() needs


def build_classifier(config_path, checkpoint_path, num_labels, model='bert', dropout_rate=0.1):
    """A Keras model on [token ids, segment ids] returning label probabilities.
    The backbone is loaded from the checkpoint (checked as for PET; the MLM
    head is not needed); the dense layer starts random. The paths are kept
    on the model: ``fit_classifier`` writes a run folder with them."""
    transformer = build_transformer_model(config_path, None, model=model, return_keras_model=False)
    if checkpoint_path is not None:
        load_checkpoint_weights(transformer, checkpoint_path, allow_random_mlm_head=True)
    cls = keras.layers.Lambda(lambda x: x[:, 0], name='CLS-token')(transformer.model.output)
    cls = keras.layers.Dropout(dropout_rate, name='Classifier-Dropout')(cls)
    probs = keras.layers.Dense(
        num_labels, activation='softmax', kernel_initializer=transformer.initializer, dtype='float32', name='Classifier'
    )(cls)  # float32 probabilities under mixed precision
    classifier = keras.Model(transformer.model.inputs, probs, name='classifier')
    classifier.config_path, classifier.checkpoint_path, classifier.model_family = config_path, checkpoint_path, model
    return classifier


def encode_fields(tokenizer, example, maxlen):
    """(token ids, segment ids): one text, or the first two fields as a pair."""
    texts = list(example.fields.values())[:2]
    return tokenizer.encode(*texts, maxlen=maxlen)


class ClassifierGenerator(DataGenerator):
    """Batches ``((token_ids, segment_ids), target distributions)``."""

    def __init__(self, tokenizer, examples, targets, batch_size=32, maxlen=128):
        encoded = [encode_fields(tokenizer, e, maxlen) for e in examples]
        super().__init__(list(zip(encoded, np.asarray(targets, dtype='float32'))), batch_size=batch_size)

    def __iter__(self, random=False):
        ids, segments, targets = [], [], []
        for is_end, ((token_ids, segment_ids), target) in self.sample(random):
            ids.append(token_ids)
            segments.append(segment_ids)
            targets.append(target)
            if len(ids) == self.batch_size or is_end:
                yield [sequence_padding(ids), sequence_padding(segments)], np.array(targets)
                ids, segments, targets = [], [], []

    def to_dataset(self, random=True):
        """An endless, prefetched tf.data pipeline over the batches."""
        spec = tf.TensorSpec((None, None), tf.int32)
        labels = len(self.data[0][1])

        def batches():
            for (ids, segments), targets in self.forfit(random):
                yield (ids.astype('int32'), segments.astype('int32')), targets

        return tf.data.Dataset.from_generator(
            batches, output_signature=((spec, spec), tf.TensorSpec((None, labels), tf.float32))
        ).prefetch(tf.data.AUTOTUNE)


class ClassifierScorer:
    """Label probabilities and accuracy of a classifier, the interface of
    ``scoring.Scorer`` (so the same training callbacks evaluate both)."""

    def __init__(self, model, tokenizer, labels, maxlen=128, batch_size=64):
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.maxlen, self.batch_size = maxlen, batch_size
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def predict_proba(self, examples, verbose=True):
        encoded = [encode_fields(self.tokenizer, e, self.maxlen) for e in examples]
        order = np.argsort([len(ids) for ids, _ in encoded], kind='stable')  # length buckets: little padding
        probs = np.zeros((len(encoded), len(self.labels)), dtype='float32')
        bar = progress_bar(len(encoded), unit_name='example') if verbose else None
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            length = pad_to_multiple(max(len(encoded[i][0]) for i in idx))
            inputs = [sequence_padding([encoded[i][k] for i in idx], length).astype('int32') for k in (0, 1)]
            probs[idx] = self._predict(inputs).numpy()
            if bar:
                bar.update(min(start + self.batch_size, len(order)))
        return probs

    def accuracy(self, examples, verbose=True):
        if any(e.label is None for e in examples):
            raise ValueError('accuracy needs labeled examples')
        probs = self.predict_proba(examples, verbose)
        predicted = np.where(np.isfinite(probs).all(1), probs.argmax(1), -1)
        return float(np.mean(predicted == np.array([self.labels.index(e.label) for e in examples])))


def one_hot(examples, labels):
    """Hard targets (examples, labels) from the examples' label names."""
    unknown = sorted({e.label for e in examples} - set(labels), key=str)
    if unknown:
        raise ValueError('labels %s are not among %s' % (unknown, labels))
    return np.eye(len(labels), dtype='float32')[[labels.index(e.label) for e in examples]]


def fit_classifier(
    model,
    tokenizer,
    labels,
    train,
    valid,
    test=None,
    targets=None,
    steps=budget.STEPS,
    eval_every=budget.EVAL_EVERY,
    patience=budget.PATIENCE,
    learning_rate=None,
    batch_size=32,
    maxlen=128,
    out_dir=None,
    settings=None,
    verbose=1,
    record=None,
):
    """Fine-tune ``model`` (``build_classifier``) on ``train`` examples with
    ``targets`` (examples × labels distributions; default: their one-hot
    labels) under fit_pet's budget: at most ``steps`` steps, validation every
    ``eval_every``, stopping after ``patience`` evaluations without a better
    one, keeping the best weights; test accuracy once, on them. With
    ``valid=None`` the whole budget trains and the last weights are kept
    (a budget chosen beforehand, by ``pet_keras.crossval``).
    ``learning_rate`` defaults to ``budget.default_learning_rate('classifier', ...)``.
    ``out_dir`` becomes a run folder ``pet_keras.serving.load`` opens
    (classifier.json, classifier_weights.h5, bert_config.json, vocab.txt, results.json).
    ``out_dir`` is locked while it runs (``runlock``), as fit_pet's is.
    ``record``: more entries for results.json (e.g. ``pet_keras.crossval``'s choice).
    Returns the results dict (also written to ``out_dir/results.json``)."""
    budget.check(steps, eval_every, patience, learning_rate)
    if steps < 1:
        raise ValueError('the classifier trains: steps must be at least 1, got %d' % steps)
    if not train or (valid is not None and not valid):
        raise ValueError(
            'no %s examples: the classifier needs at least one' % ('training' if not train else 'validation')
        )
    out_dir = out_dir or 'runs/classifier'
    with runlock.locked(out_dir, hold=model.distribute_strategy.extended.should_checkpoint):
        started = time.time()
        labels = list(labels)
        if learning_rate is None:
            learning_rate = budget.default_learning_rate('classifier', getattr(model, 'checkpoint_path', None))
        targets = one_hot(train, labels) if targets is None else np.asarray(targets, dtype='float32')
        if targets.shape != (len(train), len(labels)):
            raise ValueError('targets must have shape %s, got %s' % ((len(train), len(labels)), targets.shape))
        generator = ClassifierGenerator(tokenizer, train, targets, batch_size, maxlen)
        scorer = ClassifierScorer(model, tokenizer, labels, maxlen)
        plan = budget.Budget(steps, eval_every, patience, learning_rate)
        zero_valid, history = train_classifier(model, generator, scorer, valid, plan, out_dir, verbose)
        best_step, best_valid = chosen_step(zero_valid, history)
        results = {
            'settings': settings or {},
            'labels': labels,
            'train_examples': len(train),
            'budget': budget_record(steps, eval_every, patience, learning_rate),
            'step_0': {'valid': zero_valid},  # the untrained model (a random head): not a zero-shot result
            'evaluations': history,
            'best_step': best_step,
            'valid': best_valid,
            'test': scorer.accuracy(test, verbose=False) if test else None,
            'wall_seconds': round(time.time() - started, 1),
            **(record or {}),
        }
        save_run_folder(model, tokenizer, out_dir, labels, list(train[0].fields), maxlen)
        write_json(os.path.join(out_dir, 'results.json'), results)
        print_outcome(results, out_dir)
        return results


def train_classifier(model, generator, scorer, valid, plan, out_dir, verbose):
    """fit_classifier's training under ``plan`` (a budget.Budget) in the one loop
    (``loop.train_and_keep_best``); (step 0's validation accuracy, the evaluations)."""
    model.compile(optimizer=Adam(plan.learning_rate), loss='categorical_crossentropy')
    zero_valid = scorer.accuracy(valid, verbose=False) if valid is not None else None  # the untrained head
    history = train_and_keep_best(
        model,
        generator.to_dataset(),
        scorer,
        valid,
        plan,
        out_dir,
        os.path.join(out_dir, CLASSIFIER_WEIGHTS),
        zero_valid,
        'a classifier run does not resume: the same command starts it again',
        chief=model.distribute_strategy.extended.should_checkpoint,
        verbose=verbose,
    )
    return zero_valid, history


def save_run_folder(model, tokenizer, out_dir, labels, fields, maxlen):
    """What ``load`` needs besides the weights: the config, the tokenizer's vocabulary and classifier.json."""
    write_json(os.path.join(out_dir, 'bert_config.json'), load_config(model.config_path))
    vocab = sorted(tokenizer._token_dict, key=tokenizer._token_dict.get)  # one token a line, in id order
    write_text(os.path.join(out_dir, 'vocab.txt'), ''.join(token + '\n' for token in vocab))
    write_json(
        os.path.join(out_dir, CLASSIFIER_SPEC),
        {'labels': labels, 'fields': fields, 'maxlen': maxlen, 'model': model.model_family},
    )
