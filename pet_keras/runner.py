"""Running a task: the one flow of scripts/sentiment.py, news.py, pair.py and ``pet-keras
train`` (``run``), and its first half, which scripts/sentiment_ensemble.py shares
(``prepare``): check the output folder, set up TensorFlow, split the examples, check
them, load the checkpoint, bind the pattern; then train and evaluate by the mode."""

import json
import os
from collections import namedtuple

import numpy as np

from pet_keras import budget, crossval, lexical, runtime, serving, startup
from pet_keras.batching import PetDataGenerator
from pet_keras.budget import EMBEDDED_CHECKPOINT
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.config import RESUME_MAY_CHANGE
from pet_keras.data import split_labeled
from pet_keras.io import write_json
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.modes import CLASSIFIER, WITH_LEXICAL_EXPERT, training_sets
from pet_keras.pattern import PVP
from pet_keras.runstate import CROSS_VALIDATION, examples_digest, finished_classifier, finished_run
from pet_keras.scoring import Scorer
from pet_keras.train import check_prompt_only, fit_pet

Checkpoint = namedtuple('Checkpoint', 'config_path checkpoint_path dict_path tokenizer')
# what ``prepare`` hands to training: the run's folder and strategy, the checkpoint, the bound
# pattern (None for the classifier), the labels, maxlen, the examples split, and the run's settings
Prepared = namedtuple('Prepared', 'out strategy checkpoint pvp labels maxlen labeled unlabeled valid test settings')


def run(task, config):
    """Train and evaluate ``task`` (a ``TaskSpec``) as ``config`` (a ``RunConfig``) says:
    --mode classifier fine-tunes a [CLS] classifier on the labeled examples (the baseline),
    any other mode trains PET's masked LM with the task's pattern (zero-shot: evaluation
    only). Without validation data the number of steps is chosen by cross-validation over
    the labeled examples (``cross_validated_steps``). Returns the run's results (fit_pet's or
    fit_classifier's), written to the run folder."""
    prepared = prepare(task, config)
    record, steps = None, config.steps
    if prepared.valid is None and prepared.labeled and config.folds:
        record = {'cross_validation': cross_validated_steps(prepared, config)}
        steps = record['cross_validation']['steps']
        runtime.fresh_session(config.seed)
    labeled, unlabeled = training_sets(config.mode, prepared.labeled, prepared.unlabeled)
    if config.mode == CLASSIFIER:
        results = fit_classifier_with(config, prepared, labeled, prepared.valid, prepared.test, prepared.out,
                                      steps=steps, record=record)  # fmt: skip
    else:
        generator = training_generator(config, prepared.pvp, labeled, unlabeled)
        mlm, results = fit_pet_with(config, prepared, generator, prepared.valid, prepared.test, prepared.out,
                                    steps=steps, tensorboard=config.tensorboard, record=record)  # fmt: skip
        if adds_lexical_expert(config, labeled):
            results = with_lexical_expert(config, prepared, mlm, results)
    if record:
        choice = results['cross_validation']
        print(
            'cross-validated accuracy %.4f ± %.4f (%d folds; %d steps on all %d labeled examples)'
            % (choice['accuracy'], choice['stderr'], choice['folds'], choice['steps'], len(labeled))
        )
        if 'with_lexical_expert' in choice:
            mixed = choice['with_lexical_expert']
            print('cross-validated accuracy with the lexical expert %.4f ± %.4f' % (mixed['accuracy'], mixed['stderr']))
    return results


def prepare(task, config, ensemble=False):
    """The checks and set-up before any model is built, as a ``Prepared``: the run folder
    (``config.out``, default runs/<task>-<mode>) checked (``startup.check_start``), TensorFlow's
    strategy, seed and precision, the training examples split into labeled and unlabeled
    (``task.labeled_fraction``, plus ``task.unlabeled``, at most ``task.max_unlabeled``) and
    checked, the checkpoint loaded and the pattern bound to its tokenizer. ``ensemble``: for
    ``pet_keras.ensemble``, which reuses finished runs in the folder and distils on all the
    unlabeled text whatever the mode."""
    out = config.out or os.path.join('runs', '%s-%s' % (task.name, config.mode))
    startup.check_start(config, out, dict(task.files, **config.checkpoint_inputs()), reuses_finished=ensemble)
    strategy = runtime.strategy(config.distribute)  # first: multi-worker sets up TensorFlow
    runtime.seed(config.seed)
    runtime.set_precision(config.mixed_precision)
    labeled, unlabeled = split_labeled(task.train, task.labeled_fraction, task.split_seed)
    unlabeled = (unlabeled + list(task.unlabeled))[: task.max_unlabeled]
    valid = task.valid
    if config.fold_valid:  # a validation set too small to choose on: it joins the cross-validation's folds
        if valid is None:
            raise ValueError(
                '--fold-valid adds the validation examples to the labeled ones, and there are none: give '
                'validation data (--valid; a script without --no-valid), or leave --fold-valid out'
            )
        labeled, valid = labeled + list(valid), None
    used = (labeled, unlabeled) if ensemble else training_sets(config.mode, labeled, unlabeled)
    print(
        'train %d (labeled %d, unlabeled %d), valid %s, test %s'
        % (
            len(task.train),
            len(used[0]),
            len(used[1]),
            'left out' if task.valid is None else '%d%s' % (len(task.valid), ', labeled' if config.fold_valid else ''),
            '-' if task.test is None else len(task.test),
        )
    )
    startup.check_data(config.mode, task.labeled_fraction, *used, task.train, task.valid, task.test, task.unlabeled)
    if config.lexical and len({e.label for e in used[0]}) < 2:
        raise ValueError(
            '--lexical: the labeled examples have fewer than two labels, and the lexical expert learns to tell '
            'labels apart; label examples of two labels or more, or leave --lexical out'
        )
    checkpoint = load_checkpoint(config)
    pvp = None if config.mode == CLASSIFIER else task_pvp(task, checkpoint.tokenizer)  # no label words needed
    if pvp is not None:
        budget.check_slot_loss(config.slot_loss, pvp.slot_lengths)
        check_prompt_only(config.prompt_only, pvp)
    settings = dict(task.to_json(), **config.to_json())
    return Prepared(
        out, strategy, checkpoint, pvp, task.labels, task.maxlen, labeled, unlabeled, valid, task.test, settings
    )


def task_pvp(task, tokenizer, template=None):
    """The task's ``PVP`` (``template``: another pattern, for an ensemble) bound to ``tokenizer``.
    A label that is its own word (``task.named_labels``) must be a word the vocabulary spells
    whole (no word pieces, not a bare number)."""
    unspellable = {}
    for label in task.named_labels:
        ids = tokenizer.encode(label)[0][1:-1]
        tokens = tokenizer.ids_to_tokens(ids)
        # spelled in word pieces ('n ##e ##g …') or a bare number ('0', '1'): not a word the MLM could predict
        pieces = any(t.startswith('##') for t in tokens) or label.strip().isdigit()
        if not ids or tokenizer._token_unk_id in ids or pieces:
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
    return PVP(template or task.template, task.verbalizer(), tokenizer, task.maxlen, task.windows)


def cross_validated_steps(prepared, config):
    """``pet_keras.crossval``'s choice of steps for a run without validation: a fit_pet (or
    fit_classifier) run per fold in <out>/cross-validation/fold-<n>, each under the run's
    budget with ``config.fold_patience`` and at most the steps ``crossval.cross_validate`` allows it;
    a PET fold finished by an earlier call with the same settings is read back, not trained again."""

    def fit_fold(number, train, held_out, steps):
        steps = config.steps if steps is None else min(steps, config.steps)
        fold_dir = os.path.join(prepared.out, CROSS_VALIDATION, 'fold-%d' % number)
        runtime.fresh_session(config.seed)
        if config.mode == CLASSIFIER:
            done = finished_classifier(fold_dir, prepared.settings, train, RESUME_MAY_CHANGE)
            if done:
                print('fold %d: the finished run in %s' % (number, fold_dir))
                return done
            record = {'training_data': examples_digest(train)}
            return fit_classifier_with(config, prepared, train, held_out, None, fold_dir, record=record,
                                       steps=steps, patience=config.fold_patience)  # fmt: skip
        unlabeled = training_sets(config.mode, [], prepared.unlabeled)[1]
        generator = training_generator(config, prepared.pvp, train, unlabeled)
        done = finished_run(fold_dir, prepared.settings, generator, RESUME_MAY_CHANGE)
        if done:
            print('fold %d: the finished run in %s' % (number, fold_dir))
            return done
        return fit_pet_with(
            config, prepared, generator, held_out, None, fold_dir, steps=steps, patience=config.fold_patience
        )[1]

    return crossval.cross_validate(fit_fold, prepared.labeled, config.folds, config.seed)


def adds_lexical_expert(config, labeled):
    """Whether the run adds the lexical expert: as ``config.lexical`` says, and by default (None)
    in the modes it joins when the ``labeled`` examples have two labels or more."""
    if config.lexical is None:
        return config.mode in WITH_LEXICAL_EXPERT and len({e.label for e in labeled}) > 1
    return config.lexical


def with_lexical_expert(config, prepared, mlm, results):
    """The run's results with ``lexical.fit_expert``'s record (``lexical_expert``), the expert saved
    beside PET's weights in the run folder, results.json written again."""
    scorer = Scorer(mlm, prepared.pvp, calibrate=config.calibrate)
    model, expert = lexical.fit_expert(
        scorer, prepared.labeled, prepared.valid, prepared.test, config.folds or crossval.FOLDS, config.seed
    )
    model.save(prepared.out, expert['weight'])
    results = dict(results, lexical_expert=expert)
    if 'cross_validation' in results:  # no validation: the estimate the user reads is the mixture's too
        fold_dirs = [os.path.join(prepared.out, CROSS_VALIDATION, 'fold-%d' % n) for n in range(1, config.folds + 1)]
        estimate = cross_validated_expert(fold_dirs, prepared.labeled, config.seed, config.calibrate, config.model)
        results['cross_validation'] = dict(results['cross_validation'], with_lexical_expert=estimate)
    write_json(os.path.join(prepared.out, 'results.json'), results)
    alone = expert['lexical']
    print(
        'with the lexical expert (char %d-%d grams, C %g, weight %g): valid %s, test %s; the lexical model alone: '
        'valid %s, test %s'
        % (*alone['ngram_range'], alone['C'], expert['weight'], percent(expert['valid']), percent(expert['test']),
           percent(alone.get('valid', alone.get('cross_validated'))), percent(alone.get('test')))
    )  # fmt: skip
    return results


def cross_validated_expert(fold_dirs, labeled, seed, calibrate=False, model='bert'):
    """The cross-validated accuracy of PET with the lexical expert, as a run without validation
    adds it: on each fold of ``labeled`` (``crossval.fold_splits``), the fold's PET run (its folder
    in ``fold_dirs``, weights kept at its best held-out step) and an expert fitted on the fold's
    training examples (n-grams and C cross-validated on them, ``lexical.DEFAULT_WEIGHT``), scored
    on the held-out fold."""
    accuracies, folds = [], len(fold_dirs)
    for fold_dir, (train, held_out) in zip(fold_dirs, crossval.fold_splits(labeled, folds, seed)):
        runtime.fresh_session(seed)
        pet = serving.load(fold_dir, calibrate=calibrate, model=model).scorer
        accuracies.append(lexical.fit_expert(pet, train, None, held_out, folds, seed)[1]['test'])
    return {
        'accuracy': float(np.mean(accuracies)),
        'stderr': float(np.std(accuracies, ddof=1) / np.sqrt(len(accuracies))),
        'fold_accuracy': accuracies,
    }


def percent(value):
    return '-' if value is None else '%.4f' % value


def fit_classifier_with(config, prepared, train, valid, test, out, **more):
    """fit_classifier on a classifier built from the prepared checkpoint under its strategy,
    with ``config``'s budget, batch size and the task's maxlen; ``more``: fit_classifier's
    other arguments, which override those."""
    checkpoint = prepared.checkpoint
    with prepared.strategy.scope():
        model = build_classifier(checkpoint.config_path, checkpoint.checkpoint_path, len(prepared.labels), config.model)
    kwargs = dict(config.budget(), batch_size=config.batch_size, maxlen=prepared.maxlen)
    kwargs.update(settings=prepared.settings, **more)
    return fit_classifier(model, checkpoint.tokenizer, prepared.labels, train, valid, test, out_dir=out, **kwargs)


def fit_pet_with(config, prepared, generator, valid, test, out, pvp=None, settings=None, **more):
    """fit_pet on a masked LM built from the prepared checkpoint under its strategy, with
    ``config``'s mode, budget, resume and calibration; ``pvp`` and ``settings`` default to the
    prepared ones; ``more``: fit_pet's other arguments, which override those. Returns (the
    model, fit_pet's results)."""
    with prepared.strategy.scope():
        mlm = build_checkpoint_mlm(config, prepared.checkpoint)
    kwargs = dict(
        config.budget(),
        mode=config.mode,
        resume=config.resume,
        may_change=RESUME_MAY_CHANGE,
        settings=settings or prepared.settings,
        calibrate=config.calibrate,
        slot_loss=config.slot_loss,
        prompt_only=config.prompt_only,
    )
    kwargs.update(more)
    return mlm, fit_pet(mlm, pvp or prepared.pvp, generator, valid, test, out_dir=out, **kwargs)


def training_generator(config, pvp, labeled, unlabeled):
    """The PetDataGenerator ``config`` (batch size, mask rate, labeled share, seed) makes of
    these examples; None without any (zero-shot)."""
    if not (labeled or unlabeled):
        return None
    return PetDataGenerator(
        pvp, labeled, unlabeled, config.batch_size, config.mask_rate, seed=config.seed,
        labeled_share=config.labeled_share,
    )  # fmt: skip


def load_checkpoint(config):
    """The ``Checkpoint`` (config_path, checkpoint_path, dict_path, tokenizer) ``config`` names."""
    config_path, checkpoint_path, dict_path = startup.checkpoint_files(
        config.checkpoint_dir or EMBEDDED_CHECKPOINT, config.config_path, config.checkpoint_path,
        config.dict_path,
    )  # fmt: skip
    return Checkpoint(
        config_path, checkpoint_path, dict_path, load_tokenizer(dict_path, load_config(config_path), config_path)
    )


def build_checkpoint_mlm(config, checkpoint):
    """``build_mlm`` on ``checkpoint`` (a ``Checkpoint``) with ``config``'s model family and
    allow_random_mlm_head."""
    return build_mlm(
        checkpoint.config_path,
        checkpoint.checkpoint_path,
        model=config.model,
        allow_random_mlm_head=config.allow_random_mlm_head,
        dict_path=checkpoint.dict_path,
    )
