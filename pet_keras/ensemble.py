"""Full PET: one model per pattern, their ensemble, iPET and distillation.

After Schick & Schütze (2021): each pattern's MLM is trained on the labeled
examples; their label distributions are averaged (optionally weighted by each
pattern's validation accuracy) into soft labels for the unlabeled text; a plain
classifier learns from those (distillation). iPET repeats the per-pattern
training for some generations, each time adding the ensemble's most confident
pseudo-labels, balanced per class, to the labeled set.

``ipet`` and ``distill`` run the whole of it from the flags of
scripts/sentiment_ensemble.py (``cli.script_parser(several_patterns=True)`` and the
ensemble's own): every model trains under the same budget, in its own run folder.
"""

import os

import numpy as np

from pet_keras import cli, startup, task
from pet_keras.classifier import build_classifier, fit_classifier, one_hot
from pet_keras.compat import keras
from pet_keras.data import Example
from pet_keras.io import write_json
from pet_keras.runstate import finished_run
from pet_keras.scoring import Scorer
from pet_keras.serving import load
from pet_keras.modes import training_sets

# flags a pattern's run does not depend on: what they change in its training data is compared instead
ENSEMBLE_ONLY = cli.RESUME_MAY_CHANGE + (
    'patterns',
    'temperature',
    'generations',
    'growth',
    'weighted',
    'max_unlabeled',
)


def ensemble_proba(probs, weights=None):
    """The weighted mean of several (examples, labels) probability arrays."""
    probs = np.asarray(probs, dtype='float64')
    if probs.ndim != 3:
        raise ValueError('expected a list of (examples, labels) arrays, got shape %s' % (probs.shape,))
    weights = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype='float64')
    if weights.shape != (len(probs),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError('need one non-negative weight per model (not all zero), got %s' % (weights,))
    return np.tensordot(weights / weights.sum(), probs, axes=1)


def soften(probs, temperature=1.0):
    """Sharpen (T < 1) or flatten (T > 1) distributions: p^(1/T), renormalised.
    Equal to a softmax of the log-probabilities divided by T."""
    if temperature <= 0:
        raise ValueError('temperature must be positive, got %r' % temperature)
    logits = np.log(np.clip(probs, 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def accuracy(probs, examples, labels):
    """Share of ``examples`` whose label is the argmax of ``probs``."""
    truth = np.array([labels.index(e.label) for e in examples])
    return float(np.mean(np.asarray(probs).argmax(1) == truth))


def confident_examples(examples, probs, labels, per_class):
    """iPET's next training examples: for each label, the ``per_class``
    examples the ensemble assigns to it with the highest probability, labeled
    with it. Fewer when the ensemble predicts a label for fewer examples."""
    probs = np.asarray(probs)
    predicted = probs.argmax(1)
    chosen = []
    for k, label in enumerate(labels):
        candidates = np.flatnonzero(predicted == k)
        best = candidates[np.argsort(-probs[candidates, k], kind='stable')[:per_class]]
        chosen.extend(Example(examples[i].fields, label, examples[i].source) for i in sorted(best))
    return chosen


def pattern_model(args, checkpoint, name, pvp, train_set, unlabeled, valid, test, run_dir, may_change=ENSEMBLE_ONLY):
    """One pattern's model of a generation, a fresh one (Keras session cleared): (its run's
    results, its Scorer). A finished run in ``run_dir`` with the same settings and training
    data (``may_change``: the settings it need not share) is loaded instead of trained again."""
    keras.backend.clear_session()
    examples, texts = training_sets(args.mode, train_set, unlabeled)
    generator = task.training_generator(args, pvp, examples, texts)
    run = finished_run(run_dir, vars(args), generator, may_change) if generator else None
    if run:
        print('%s: loading the finished run in %s' % (name, run_dir))
        return run, load(run_dir, calibrate=args.calibrate, model=args.model).scorer
    mlm, run = task.fit_pet_from_flags(args, checkpoint, pvp, generator, valid, test, run_dir)
    return run, Scorer(mlm, pvp, calibrate=args.calibrate)


def generation(args, checkpoint, pvps, number, train_set, splits, out, presets=(), may_change=ENSEMBLE_ONLY):
    """Generation ``number``: a model per pattern of ``pvps`` ({name: PVP}) trained on
    ``train_set`` (and ``splits['unlabeled']``), in ``out``/generation-<number>/<name>
    (``pattern-<i>`` for a name not in ``presets``), and their ensemble (--weighted: by
    validation accuracy). Returns (its record, {split: the ensemble's probabilities})."""
    probs, record = {split: [] for split in splits}, {'generation': number, 'labeled': len(train_set)}
    for index, (name, pvp) in enumerate(pvps.items()):
        run_dir = os.path.join(out, 'generation-%d' % number, name if name in presets else 'pattern-%d' % index)
        run, scorer = pattern_model(
            args,
            checkpoint,
            name,
            pvp,
            train_set,
            splits['unlabeled'],
            splits['valid'],
            splits['test'],
            run_dir,
            may_change,
        )
        record[name] = {'valid': run['valid'], 'test': run['test']}
        for split, examples in splits.items():
            probs[split].append(scorer.predict_proba(examples, verbose=split == 'unlabeled'))
    weights = [record[name]['valid'] for name in pvps] if args.weighted else None
    ensemble = {split: ensemble_proba(probs[split], weights) for split in splits}
    labels = next(iter(pvps.values())).labels
    record['ensemble'] = {split: accuracy(ensemble[split], splits[split], labels) for split in ('valid', 'test')}
    print('generation %d ensemble: valid %.4f, test %.4f' % (number, *record['ensemble'].values()))
    return record, ensemble


def ipet(args, checkpoint, pvps, labeled, unlabeled, valid, test, out, presets=(), may_change=ENSEMBLE_ONLY):
    """PET, then --generations iPET generations: after each, the labeled examples plus, per
    class, the ensemble's most confident unlabeled ones (--growth times more each
    generation) train the next. Returns (the generations' records, the last ensemble's
    {split: probabilities})."""
    splits = {'valid': valid, 'test': test, 'unlabeled': unlabeled}
    labels = next(iter(pvps.values())).labels
    records, train_set = [], labeled
    for number in range(args.generations + 1):
        record, ensemble = generation(args, checkpoint, pvps, number, train_set, splits, out, presets, may_change)
        records.append(record)
        if number < args.generations:
            per_class = len(labeled) * args.growth ** (number + 1) // len(labels)
            train_set = labeled + confident_examples(unlabeled, ensemble['unlabeled'], labels, per_class)
    return records, ensemble


def distill(args, checkpoint, labels, labeled, unlabeled, soft_labels, valid, test, out_dir):
    """Distillation: a fresh [CLS] classifier trained on the labeled examples' own labels and
    the unlabeled ones' ``soft_labels`` (the ensemble's), softened by --temperature.
    Returns fit_classifier's results."""
    keras.backend.clear_session()
    config_path, checkpoint_path, _, tokenizer = checkpoint
    classifier = build_classifier(config_path, checkpoint_path, len(labels), model=args.model)
    targets = np.concatenate([one_hot(labeled, labels), soften(soft_labels, args.temperature)])
    return fit_classifier(
        classifier,
        tokenizer,
        labels,
        labeled + unlabeled,
        valid,
        test,
        targets,
        batch_size=args.batch_size,
        maxlen=args.maxlen,
        out_dir=out_dir,
        settings=vars(args),
        **startup.budget_args(args),
    )


def write_results(out, results, names):
    """Print the Markdown table of every model's validation and test accuracy (the patterns
    ``names``, each generation's ensemble, the distilled classifier); write <out>/results.json."""
    print('\n| model | valid | test |\n|---|---|---|')
    for record in results['generations']:
        for name in list(names) + ['ensemble']:
            print('| generation %d %s | %.4f | %.4f |' % (record['generation'], name, *record[name].values()))
    print('| distilled classifier | %.4f | %.4f |' % tuple(results['distilled'].values()))
    write_json(os.path.join(out, 'results.json'), results)
    print('results in %s' % os.path.join(out, 'results.json'))
