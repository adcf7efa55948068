"""The state of a run in its output folder: what resuming needs, and what refuses a resume.

run.json keeps the run's settings, training data, zero-shot accuracy and
evaluations so far; Keras' BackupAndRestore keeps weights, optimizer state and
interval in ``backup/``. Which settings may differ on a resume is the
caller's to say (``may_change``): the settings are the caller's own.
"""

import contextlib
import hashlib
import json
import os
import shutil

import h5py
import tensorflow as tf

from pet_keras.io import read_json

BEST_WEIGHTS = 'best_weights.h5'  # Keras h5 by layer name
RUN_STATE = 'run.json'  # settings, training data, zero-shot and evaluations so far: what resuming needs
BACKUP = 'backup'  # keras.callbacks.BackupAndRestore's folder, removed when the run ends


def backed_up_intervals(backup_dir):
    """How many evaluation intervals (Keras epochs) the BackupAndRestore backup in ``backup_dir``
    has done (0: no backup). Keras keeps the chief's checkpoint in ``chief/`` with the last epoch
    begun (0-based)."""
    latest = tf.train.latest_checkpoint(os.path.join(backup_dir, 'chief'))
    if latest is None:
        return 0
    return int(tf.train.load_variable(latest, 'ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE')) + 1


def training_data(generator):
    """What fixes a run's batches: the encoded training examples (labeled and
    unlabeled, so the data split), the batch size, the masking rate and the
    labeled share (when one is set)."""
    digest = hashlib.sha256()
    for item in generator.data:
        digest.update(
            json.dumps(
                [
                    [int(t) for t in item.token_ids],
                    [int(s) for s in item.segment_ids],
                    None if item.label is None else int(item.label),
                ]
            ).encode()
        )
    record = {
        'examples': len(generator.data),
        'sha256': digest.hexdigest(),
        'batch_size': generator.batch_size,
        'mask_rate': generator.mask_rate,
    }
    if generator.labeled_share is not None:
        record['labeled_share'] = generator.labeled_share
    return record


def examples_digest(examples):
    """How many ``examples`` and a digest of their fields and labels."""
    h = hashlib.sha256()
    for e in examples or ():
        h.update(json.dumps([e.fields, e.label], ensure_ascii=False, sort_keys=True).encode('utf-8'))
    return {'examples': len(examples or ()), 'sha256': h.hexdigest()}


def evaluation_data(valid, test):
    """What the evaluations of a run were made on: each split's ``examples_digest`` (a resumed
    run must evaluate on the same)."""
    return {'valid': examples_digest(valid), 'test': examples_digest(test)}


def changes(saved, run, may_change):
    """How a run's settings and training data differ from a saved run's,
    leaving out the settings in ``may_change``: a list of 'what: then, now'."""
    old, new = saved['settings'], json.loads(json.dumps(run['settings']))
    changed = [
        '%s: %s, now %s'
        % (key, json.dumps(old.get(key), ensure_ascii=False), json.dumps(new.get(key), ensure_ascii=False))
        for key in sorted(set(old) | set(new))
        if key not in may_change and old.get(key) != new.get(key)
    ]
    if saved['training_data'] != run['training_data']:
        changed.append(
            'training data: %s, now %s' % (json.dumps(saved['training_data']), json.dumps(run['training_data']))
        )
    for split in ('valid', 'test'):  # run.json files written before evaluation_data existed have none
        then = saved.get('evaluation_data', {}).get(split)
        now = run.get('evaluation_data', {}).get(split)
        if then is not None and now is not None and then != now:
            changed.append('%s data: %s, now %s' % (split, json.dumps(then), json.dumps(now)))
    return changed


def finished_run(out_dir, settings, generator, may_change):
    """The results of the run ``fit_pet`` finished in ``out_dir`` with these
    settings (but for those in ``may_change``) and this generator's training
    data, or None when it holds no finished run. Refuses a finished run made
    with other settings or data: training again would overwrite it."""
    path = os.path.join(out_dir, RUN_STATE)
    saved = read_json(path) if os.path.exists(path) else {}
    if not saved.get('finished'):
        return None
    refuse_changed(out_dir, saved, {'settings': settings, 'training_data': training_data(generator)}, may_change)
    return read_json(os.path.join(out_dir, 'results.json'))


def refuse_changed(out_dir, saved, run, may_change):
    """Refuse to reuse the finished run ``saved`` in ``out_dir`` for ``run`` (its settings and
    training data) when they differ (but for the settings in ``may_change``)."""
    changed = changes(saved, run, may_change)
    if changed:
        raise ValueError(
            '%s holds a finished run with other settings or training data (%s): use another folder'
            % (out_dir, '; '.join(changed))
        )


def finished_classifier(out_dir, settings, examples, may_change):
    """The results of the classifier run ``fit_classifier`` finished in ``out_dir`` with these
    settings (but for those in ``may_change``) on these training ``examples`` (their
    ``examples_digest``, recorded as its ``training_data``), or None when it holds none.
    Refuses a finished run made otherwise, or one that does not record what it trained on:
    training again would overwrite it."""
    path = os.path.join(out_dir, 'results.json')
    if not os.path.isfile(path):
        return None
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get('settings'), dict) or 'training_data' not in saved:
        raise ValueError(
            '%s holds a finished run that does not record its settings and training data, so it cannot be '
            'reused: move it away or use another folder' % out_dir
        )
    refuse_changed(out_dir, saved, {'settings': settings, 'training_data': examples_digest(examples)}, may_change)
    return saved


# what a PET or classifier run writes in its folder: what --overwrite removes, and only that
RUN_FILES = (
    'results.json',
    RUN_STATE,
    BEST_WEIGHTS,
    'classifier_weights.h5',
    'classifier.json',
    'pvp.json',
    'bert_config.json',
    'vocab.txt',
    'bert_model.ckpt.index',
    'bert_model.ckpt.data-00000-of-00001',
    'checkpoint',
    'lexical.json',  # pet_keras.lexical's expert (--lexical)
    'lexical.npz',
)
CROSS_VALIDATION = 'cross-validation'  # a run chosen by pet_keras.crossval: its folds' run folders
RUN_FOLDERS = (BACKUP, 'tensorboard', CROSS_VALIDATION)


def holds_finished_run(out_dir):
    """Whether ``out_dir`` holds a finished run (its results.json)."""
    return os.path.isfile(os.path.join(out_dir, 'results.json'))


def remove_run(out_dir):
    """Remove the files and folders a run wrote in ``out_dir`` (``RUN_FILES``, ``RUN_FOLDERS``), nothing else."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))
    for name in RUN_FOLDERS:
        shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
    print('--overwrite: removed the finished run in %s' % out_dir)


def check_not_interrupted(out_dir):
    """Refuse ``out_dir`` when it holds an interrupted run (a backup): a new run, zero-shot
    or not, would overwrite what resuming needs."""
    done = backed_up_intervals(os.path.join(out_dir, BACKUP))
    if done:
        raise ValueError(
            '%s holds a run interrupted after evaluation %d (continue it with --resume, or use '
            'another --out)' % (out_dir, done)
        )


def saved_run(out_dir, run, resume, may_change):
    """The state (run.json) of the interrupted run in ``out_dir`` that ``run``
    (its settings and training data; None: zero-shot, nothing to train)
    continues with ``resume``, its evaluations cut to those the backup holds;
    None when the run starts afresh. Refuses to start over an interrupted run
    without ``resume``, to resume a finished run, and to resume with other
    settings (but for those in ``may_change``) or training data."""
    if not resume or run is None:
        check_not_interrupted(out_dir)
        return None
    done = backed_up_intervals(os.path.join(out_dir, BACKUP))
    path = os.path.join(out_dir, RUN_STATE)
    if not os.path.exists(path):
        if done:
            raise ValueError(
                "%s: a backup (%s/) but no %s with the run's settings; cannot resume" % (out_dir, BACKUP, RUN_STATE)
            )
        print('nothing to resume in %s: starting the run' % out_dir)
        return None
    saved = read_json(path)
    kinds = {'settings': dict, 'training_data': dict, 'zero_shot': dict, 'evaluations': list, 'finished': bool}
    wrong = [k for k, kind in kinds.items() if not isinstance(saved, dict) or not isinstance(saved.get(k), kind)]
    if wrong:
        raise ValueError(
            '%s: not the run state this run wrote (%s missing or of another type); cannot resume (use another '
            '--out, or drop --resume after moving the folder away)' % (path, ', '.join(wrong))
        )
    if saved['finished']:
        raise ValueError('%s: the run finished (results.json); there is nothing to resume' % out_dir)
    changed = changes(saved, run, may_change)
    if changed:
        raise ValueError(
            'cannot resume the run in %s with other settings (they fix the data split and the '
            'training); different from %s: %s' % (out_dir, path, '; '.join(changed))
        )
    if len(saved['evaluations']) < done:
        raise ValueError(
            '%s records %d evaluations, its backup %d: cannot resume' % (path, len(saved['evaluations']), done)
        )
    best = os.path.join(out_dir, BEST_WEIGHTS)
    if not os.path.exists(best):
        raise FileNotFoundError('%s: missing; cannot resume without the best weights so far' % best)
    try:
        with h5py.File(best, 'r'):
            pass
    except OSError as e:  # cut short or overwritten: found now, not after the whole budget has trained
        raise ValueError(
            '%s: not a readable HDF5 weights file (%s); cannot resume without the best weights so far (train '
            'again with another --out)' % (best, e)
        ) from None
    saved['evaluations'] = saved['evaluations'][:done]  # an interval recorded after the last backup is trained again
    return saved
