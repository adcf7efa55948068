"""Training a PET model with Keras: fit, evaluate every epoch, keep the best.

Before training the model is evaluated as it is (zero-shot, epoch 0). Each
epoch adds ``val_accuracy`` (and ``test_accuracy`` when validation improves)
to the Keras logs, so EarlyStopping and ModelCheckpoint work on it as usual.
The best weights are written atomically and reloaded at the end; the output
folder is a checkpoint pet_keras loads like a downloaded one, plus the
pattern (pvp.json) and the metrics (results.json).
"""
import json
import os
import time

import numpy as np

from pet_keras.compat import keras
from pet_keras.predict import Scorer
from bert4keras.optimizers import Adam

BEST_WEIGHTS = 'best_weights.h5'  # Keras h5 by layer name
MODES = ('zero-shot', 'unsupervised', 'few-shot', 'semi-supervised')


def training_sets(mode, labeled, unlabeled):
    """(labeled, unlabeled) training examples of a mode (the blog's four experiments):
    zero-shot trains on nothing; unsupervised is MLM on the unlabeled text only;
    few-shot uses the labeled examples; semi-supervised both."""
    if mode not in MODES:
        raise ValueError('mode must be one of %s, got %r' % (', '.join(MODES), mode))
    return {'zero-shot': ([], []), 'unsupervised': ([], unlabeled),
            'few-shot': (labeled, []), 'semi-supervised': (labeled, unlabeled)}[mode]


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes to a temporary file, then renames it: a
    failed or interrupted write leaves the previous best weights intact."""

    def _save_model(self, epoch, batch, logs):
        final = self.filepath
        tmp = os.path.join(os.path.dirname(final), '.tmp-' + os.path.basename(final))
        self.filepath = tmp
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = final
        if os.path.exists(tmp):
            os.replace(tmp, final)


def _finite(value):
    """A float, or None for a missing or non-finite value (strict JSON)."""
    return float(value) if value is not None and np.isfinite(value) else None


class Evaluator(keras.callbacks.Callback):
    """Validation accuracy every epoch; test accuracy at each new best."""

    def __init__(self, scorer, valid, test=None, best=-np.inf):
        super().__init__()
        self.scorer, self.valid, self.test = scorer, valid, test
        self.best = best
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        record = {'epoch': epoch + 1, 'seconds_train': round(time.time() - self.started, 2),
                  'loss': float(logs.get('loss', np.nan)), 'masked_accuracy': _finite(logs.get('accuracy'))}
        if not np.isfinite(record['loss']):
            record['loss'] = None  # diverged: TerminateOnNaN stops; this epoch is never the best
            self.history.append(record)
            return
        logs['val_accuracy'] = record['valid'] = self.scorer.accuracy(self.valid, verbose=False)
        if record['valid'] > self.best:
            self.best = record['valid']
            if self.test:
                logs['test_accuracy'] = record['test'] = self.scorer.accuracy(self.test, verbose=False)
        self.history.append(record)
        print(' - '.join(['epoch %d' % record['epoch']] + ['%s %.4f' % (k, record[k]) for k in
                         ('loss', 'masked_accuracy', 'valid', 'test') if record.get(k) is not None]), flush=True)


def fit_pet(mlm, pvp, generator, valid, test=None, epochs=10, learning_rate=1e-5, patience=3,
            out_dir=None, settings=None, tensorboard=False, verbose=1):
    """Train ``mlm`` on ``generator`` (a PetDataGenerator) for at most
    ``epochs`` epochs, stopping early when validation accuracy has not
    improved for ``patience`` epochs. ``epochs=0`` only evaluates (zero-shot).
    Returns the results dict (also written to ``out_dir/results.json``)."""
    started = time.time()
    out_dir = out_dir or 'runs/pet'
    os.makedirs(out_dir, exist_ok=True)
    scorer = Scorer(mlm, pvp)
    results = {'settings': settings or {}, 'pattern': pvp.to_json()}
    print('zero-shot evaluation (epoch 0)')
    zero = {'valid': scorer.accuracy(valid)}
    if test:
        zero['test'] = scorer.accuracy(test)
    results['zero_shot'] = zero
    print('epoch 0 - valid %.4f' % zero['valid'] + (' - test %.4f' % zero['test'] if test else ''))
    best_path = os.path.join(out_dir, BEST_WEIGHTS)
    model = mlm.training_model()
    history = []
    best_epoch, best = 0, dict(zero)
    if epochs > 0:
        model.compile(optimizer=Adam(learning_rate))
        model.save_weights(best_path)  # epoch 0 is the best until an epoch beats it
        evaluator = Evaluator(scorer, valid, test, best=zero['valid'])
        checkpoint = AtomicModelCheckpoint(best_path, monitor='val_accuracy', mode='max', save_best_only=True,
                                           save_weights_only=True, initial_value_threshold=zero['valid'])
        callbacks = [evaluator, checkpoint, keras.callbacks.TerminateOnNaN(),
                     keras.callbacks.EarlyStopping(monitor='val_accuracy', mode='max', patience=patience)]
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(out_dir, 'tensorboard')))
        model.fit(generator.to_dataset(random=True), steps_per_epoch=len(generator), epochs=epochs,
                  callbacks=callbacks, verbose=verbose)
        history = evaluator.history
        model.load_weights(best_path)
        for record in history:
            if record.get('valid') is not None and record['valid'] > best['valid']:
                best_epoch, best = record['epoch'], {'valid': record['valid'], 'test': record.get('test')}
    results.update({'epochs': history, 'best_epoch': best_epoch, 'valid': best['valid'],
                    'test': best.get('test'), 'wall_seconds': round(time.time() - started, 1)})
    mlm.save_checkpoint(out_dir, mlm.config, getattr(mlm, 'dict_path', None))
    pvp.save(os.path.join(out_dir, 'pvp.json'))
    with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(results, f, ensure_ascii=False, indent=2, allow_nan=False)
    print('best epoch %d: valid %.4f, test %s; results in %s'
          % (best_epoch, best['valid'], '%.4f' % best['test'] if best.get('test') is not None else '-',
             os.path.join(out_dir, 'results.json')))
    return results
