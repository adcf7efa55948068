"""Running a task given as files and flags (``pet-keras train``, ``pet-keras label-words``;
the flags and task files are described in ``pet_keras.taskfile``): reading its files, its
labels and verbalizer, and training by --mode."""

import json
import os
from collections import namedtuple

from pet_keras import cli, crossval, startup
from pet_keras.compat import keras
import tensorflow as tf
from pet_keras.taskfile import SPLITS
from pet_keras.batching import PetDataGenerator
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.data import Dataset, Example, read_jsonl, read_tsv
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.modes import CLASSIFIER
from pet_keras.verbalizer import Verbalizer
from pet_keras.runstate import CROSS_VALIDATION, finished_run
from pet_keras.train import fit_pet


def read_split(path, fields, columns, label_field, labeled=True):
    """One file's examples with just the pattern's ``fields``: JSON lines, or TSV named by ``columns``."""
    if columns is not None or path.lower().endswith('.tsv'):
        if columns is None:
            raise ValueError(
                '%s: a TSV file needs --columns naming its columns, e.g. --columns %s'
                % (path, ','.join(fields + [label_field]))
            )
        given, columns = columns, [name.strip() for name in columns.split(',')]  # 'text, label' means text,label
        if not all(columns):
            raise ValueError(
                '--columns %r: an empty column name; expected names separated by commas, the label last, e.g. '
                '--columns %s' % (given, ','.join(fields + [label_field]))
            )
        texts = [name for name in columns if name != label_field]
        if labeled and columns[-1] != label_field:
            raise ValueError('--columns %s: the label column %s must be the last' % (','.join(columns), label_field))
        missing = [name for name in fields if name not in texts]
        if missing:
            raise ValueError("--columns %s: no column for the pattern's {%s}" % (','.join(columns), missing[0]))
        data = read_tsv(path, fields=texts, labeled=labeled)
    else:
        data = read_jsonl(path, {name: name for name in fields}, label_field, labeled=labeled)
    return Dataset(
        [Example({name: e.fields[name] for name in fields}, e.label, e.source) for e in data], data.skipped, path
    )


def read_data(args, fields, splits=SPLITS):
    """{split: Dataset} of the files given, printing what was read and skipped."""
    data = {}
    for split in splits:
        path = getattr(args, split)
        if path is None:
            continue
        data[split] = read_split(path, fields, args.columns, args.label_field, labeled=split != 'unlabeled')
        print(
            '%s %s: %d examples%s'
            % (
                split,
                path,
                len(data[split]),
                ', %d rows skipped (blank, or a field of the pattern empty)' % data[split].skipped
                if data[split].skipped
                else '',
            )
        )
    return data


def task_labels(data, words):
    """The labels: ``words``' order when it names every label of the data,
    else the order of first appearance in train, valid, test, then
    ``words``' other labels (absent from the data, e.g. few-shot)."""
    seen = list(dict.fromkeys(e.label for split in ('train', 'valid', 'test') for e in data.get(split, ())))
    if all(label in words for label in seen):
        return list(words)
    return seen + [label for label in words if label not in seen]


def task_verbalizer(labels, words, tokenizer, aggregation='sum', length_norm=False):
    """The ``Verbalizer`` of ``words`` (label → words, maybe for some labels
    only): a label without words is its own word, if the vocabulary spells it whole (no
    word pieces, not a bare number)."""
    unspellable = {}
    for label in labels:
        ids = tokenizer.encode(label)[0][1:-1]
        tokens = tokenizer.ids_to_tokens(ids)
        # spelled in word pieces ('n ##e ##g …') or a bare number ('0', '1'): not a word the MLM could predict
        pieces = any(t.startswith('##') for t in tokens) or label.strip().isdigit()
        if label not in words and (not ids or tokenizer._token_unk_id in ids or pieces):
            unspellable[label] = ' '.join(tokens)
    if unspellable:
        raise ValueError(
            'label %s: not a word the vocabulary spells whole, so not its own label word; give '
            "--label-words for it, e.g. --label-words '%s'"
            % (
                ', '.join('%r (tokens %s)' % item for item in unspellable.items()),
                json.dumps({label: ['…'] for label in unspellable}, ensure_ascii=False),
            )
        )
    try:
        return Verbalizer({label: words.get(label, label) for label in labels}, aggregation, length_norm)
    except ValueError as e:
        raise ValueError('--label-words: %s' % e) from None


def settings(args):
    """The flags as fit_pet records them (results.json, run.json)."""
    return {key: value for key, value in vars(args).items() if key not in ('run', 'command')}


Checkpoint = namedtuple('Checkpoint', 'config_path checkpoint_path dict_path tokenizer')


def load_checkpoint(args):
    """The ``Checkpoint`` (config_path, checkpoint_path, dict_path, tokenizer) of the checkpoint flags."""
    config_path, checkpoint_path, dict_path = startup.checkpoint_paths(args)
    return Checkpoint(
        config_path, checkpoint_path, dict_path, load_tokenizer(dict_path, load_config(config_path), config_path)
    )


def build_checkpoint_mlm(args, checkpoint):
    """``build_mlm`` on ``checkpoint`` (a ``Checkpoint``) with the --model and --allow-random-mlm-head flags."""
    return build_mlm(
        checkpoint.config_path,
        checkpoint.checkpoint_path,
        model=args.model,
        allow_random_mlm_head=args.allow_random_mlm_head,
        dict_path=checkpoint.dict_path,
    )


def training_generator(args, pvp, labeled, unlabeled):
    """The PetDataGenerator the flags (--batch-size, --mask-rate, --labeled-share, --seed) make
    of these examples; None without any (zero-shot)."""
    if not (labeled or unlabeled):
        return None
    return PetDataGenerator(
        pvp, labeled, unlabeled, args.batch_size, args.mask_rate, seed=args.seed, labeled_share=args.labeled_share
    )


def fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy, labels=None):
    """Train and evaluate by --mode, the model built under ``strategy``: --mode classifier
    fine-tunes a [CLS] classifier on the labeled examples (the baseline; ``labels``, by
    default ``pvp.labels``; no pattern), any other mode trains PET's MLM with ``pvp``
    (fit_pet; zero-shot and no training examples: evaluation only). Without ``valid`` a
    training run's steps are chosen by cross-validation over the labeled examples
    (``cross_validated_steps``). Returns the run's results (fit_pet's or fit_classifier's),
    written to ``out``."""
    labels = labels or pvp.labels
    record, steps = None, args.steps
    if valid is None and labeled and args.folds:
        record = {
            'cross_validation': cross_validated_steps(args, checkpoint, pvp, labeled, unlabeled, out, strategy, labels)
        }
        steps = record['cross_validation']['steps']
        keras.backend.clear_session()
    if args.mode == CLASSIFIER:
        results = fit_classifier_from_flags(
            args, checkpoint, labels, labeled, valid, test, out, strategy, steps=steps, record=record
        )
    else:
        generator = training_generator(args, pvp, labeled, unlabeled)
        results = fit_pet_from_flags(
            args, checkpoint, pvp, generator, valid, test, out, strategy, steps=steps, tensorboard=args.tensorboard,
            record=record,
        )[1]  # fmt: skip
    if record:
        choice = record['cross_validation']
        print(
            'cross-validated accuracy %.4f ± %.4f (%d folds; %d steps on all %d labeled examples)'
            % (choice['accuracy'], choice['stderr'], choice['folds'], choice['steps'], len(labeled))
        )
    return results


def cross_validated_steps(args, checkpoint, pvp, labeled, unlabeled, out, strategy, labels):
    """``pet_keras.crossval``'s choice of steps for a run without validation: a fit_pet (or
    fit_classifier) run per fold in ``out``/cross-validation/fold-<n>, each under the run's
    budget and flags; a PET fold finished by an earlier call with the same flags is read back,
    not trained again (a classifier run always starts again)."""

    def fit_fold(number, train, held_out):
        fold_dir = os.path.join(out, CROSS_VALIDATION, 'fold-%d' % number)
        if args.mode == CLASSIFIER:
            keras.backend.clear_session()
            return fit_classifier_from_flags(args, checkpoint, labels, train, held_out, None, fold_dir, strategy)
        generator = training_generator(args, pvp, train, unlabeled)
        done = finished_run(fold_dir, settings(args), generator, cli.RESUME_MAY_CHANGE)
        if done:
            print('fold %d: the finished run in %s' % (number, fold_dir))
            return done
        keras.backend.clear_session()
        return fit_pet_from_flags(args, checkpoint, pvp, generator, held_out, None, fold_dir, strategy)[1]

    return crossval.cross_validate(fit_fold, labeled, args.folds, args.seed)


def fit_classifier_from_flags(args, checkpoint, labels, train, valid, test, out, strategy, **more):
    """fit_classifier on a classifier built from ``checkpoint`` under ``strategy``, with the flags'
    budget, batch size and maxlen; ``more``: fit_classifier's other arguments, which override those."""
    with strategy.scope():
        model = build_classifier(checkpoint.config_path, checkpoint.checkpoint_path, len(labels), args.model)
    kwargs = dict(startup.budget_args(args), batch_size=args.batch_size, maxlen=args.maxlen, settings=settings(args))
    kwargs.update(more)
    return fit_classifier(model, checkpoint.tokenizer, labels, train, valid, test, out_dir=out, **kwargs)


def fit_pet_from_flags(args, checkpoint, pvp, generator, valid, test, out, strategy=None, **more):
    """fit_pet on a model built from ``checkpoint`` (under ``strategy``, default TensorFlow's),
    with the flags' mode, budget, --resume and --calibrate; ``more``: fit_pet's other arguments,
    which override those. Returns (the model, fit_pet's results)."""
    with (strategy or tf.distribute.get_strategy()).scope():
        mlm = build_checkpoint_mlm(args, checkpoint)
    kwargs = dict(
        startup.budget_args(args),
        mode=args.mode,
        resume=args.resume,
        may_change=cli.RESUME_MAY_CHANGE,
        settings=settings(args),
        calibrate=args.calibrate,
    )
    kwargs.update(more)
    return mlm, fit_pet(mlm, pvp, generator, valid, test, out_dir=out, **kwargs)
