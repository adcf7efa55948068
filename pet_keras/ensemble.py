"""Full PET: one model per pattern, their ensemble, iPET and distillation.

After Schick & Schütze (2021): each pattern's MLM is trained on the labeled
examples; their label distributions are averaged (optionally weighted by each
pattern's validation accuracy) into soft labels for the unlabeled text; a plain
classifier learns from those (distillation). iPET repeats the per-pattern
training for some generations, each time adding the ensemble's most confident
pseudo-labels, balanced per class, to the labeled set.

``full_pet`` runs the whole of it for scripts/sentiment_ensemble.py and ``pet-keras train``
with several patterns: ``runner.prepare``, then ``ipet`` and ``distill``; every model trains
under the same ``RunConfig``, in its own run folder.
"""

import os

import numpy as np

from pet_keras import runner, runtime
from pet_keras.classifier import build_classifier, fit_classifier, one_hot
from pet_keras.config import RESUME_MAY_CHANGE
from pet_keras.data import Example
from pet_keras.io import write_json
from pet_keras.modes import PET_MODES, training_sets
from pet_keras.runstate import examples_digest, finished_classifier, finished_run
from pet_keras.scoring import Scorer
from pet_keras.serving import load

# what a finished pattern run may differ in and still be reused: what --max-unlabeled changes in its
# training data is compared instead
REUSABLE_IF_CHANGED = RESUME_MAY_CHANGE + ('max_unlabeled',)


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


def pattern_model(config, prepared, name, pvp, train_set, run_dir):
    """One pattern's model of a generation, in a fresh session (``runtime.fresh_session``): (its
    run's results, its Scorer). A finished run in ``run_dir`` with the same settings and
    training data is loaded instead of trained again."""
    runtime.fresh_session(config.seed)
    examples, texts = training_sets(config.mode, train_set, prepared.unlabeled)
    generator = runner.training_generator(config, pvp, examples, texts)
    settings = dict(prepared.settings, pattern=pvp.pattern.template)
    run = finished_run(run_dir, settings, generator, REUSABLE_IF_CHANGED) if generator else None
    if run:
        print('%s: loading the finished run in %s' % (name, run_dir))
        return run, load(run_dir, calibrate=config.calibrate, model=config.model).scorer
    mlm, run = runner.fit_pet_with(
        config, prepared, generator, prepared.valid, prepared.test, run_dir, pvp=pvp, settings=settings
    )
    return run, Scorer(mlm, pvp, calibrate=config.calibrate)


def generation(config, prepared, pvps, number, train_set, presets=(), weighted=False):
    """Generation ``number``: a model per pattern of ``pvps`` ({name: PVP}) trained on
    ``train_set`` (and the prepared unlabeled text), in <out>/generation-<number>/<name>
    (``pattern-<i>`` for a name not in ``presets``), and their ensemble (``weighted``: by
    validation accuracy). Returns (its record, {split: the ensemble's probabilities})."""
    splits = {'valid': prepared.valid, 'test': prepared.test, 'unlabeled': prepared.unlabeled}
    probs, record = {split: [] for split in splits}, {'generation': number, 'labeled': len(train_set)}
    for index, (name, pvp) in enumerate(pvps.items()):
        folder = name if name in presets else 'pattern-%d' % index
        run_dir = os.path.join(prepared.out, 'generation-%d' % number, folder)
        run, scorer = pattern_model(config, prepared, name, pvp, train_set, run_dir)
        record[name] = {'valid': run['valid'], 'test': run['test']}
        for split, examples in splits.items():
            probs[split].append(scorer.predict_proba(examples, verbose=split == 'unlabeled'))
    weights = [record[name]['valid'] for name in pvps] if weighted else None
    ensemble = {split: ensemble_proba(probs[split], weights) for split in splits}
    labels = next(iter(pvps.values())).labels
    record['ensemble'] = {split: accuracy(ensemble[split], splits[split], labels) for split in ('valid', 'test')}
    print('generation %d ensemble: valid %.4f, test %.4f' % (number, *record['ensemble'].values()))
    return record, ensemble


def ipet(config, prepared, pvps, presets=(), generations=0, growth=5, weighted=False):
    """PET, then ``generations`` iPET generations: after each, the labeled examples plus, per
    class, the ensemble's most confident unlabeled ones (``growth`` times more each
    generation) train the next. Returns (the generations' records, the last ensemble's
    {split: probabilities})."""
    labels = next(iter(pvps.values())).labels
    records, train_set = [], prepared.labeled
    for number in range(generations + 1):
        record, ensemble = generation(config, prepared, pvps, number, train_set, presets, weighted)
        records.append(record)
        if number < generations:
            per_class = len(prepared.labeled) * growth ** (number + 1) // len(labels)
            confident = confident_examples(prepared.unlabeled, ensemble['unlabeled'], labels, per_class)
            train_set = prepared.labeled + confident
    return records, ensemble


def distill(config, prepared, soft_labels, out_dir, settings):
    """Distillation: a fresh [CLS] classifier trained on the labeled examples' own labels and
    the unlabeled ones' ``soft_labels`` (the ensemble's), softened by ``settings['temperature']``
    (``settings``: the ensemble's, recorded with the examples' digest, which ``full_pet`` checks on
    a rerun). Returns fit_classifier's results."""
    examples = prepared.labeled + prepared.unlabeled
    runtime.fresh_session(config.seed)
    config_path, checkpoint_path, _, tokenizer = prepared.checkpoint
    classifier = build_classifier(config_path, checkpoint_path, len(prepared.labels), model=config.model)
    soft = soften(soft_labels, settings['temperature'])
    targets = np.concatenate([one_hot(prepared.labeled, prepared.labels), soft])
    return fit_classifier(
        classifier,
        tokenizer,
        prepared.labels,
        examples,
        prepared.valid,
        prepared.test,
        targets,
        batch_size=config.batch_size,
        maxlen=prepared.maxlen,
        out_dir=out_dir,
        settings=settings,
        record={'training_data': examples_digest(examples)},
        **config.budget(),
    )


def full_pet(task, config, templates, presets=(), weighted=False, generations=0, growth=5, temperature=2.0):
    """Full PET on ``task`` (a ``TaskSpec``) as ``config`` says: a model per pattern of
    ``templates`` ({name: template}; ``presets``: the names that are presets, which name their
    run folders), ``generations`` iPET generations, and a [CLS] classifier distilled from the
    last ensemble, in ``config.out``. Returns the results (also in <out>/results.json)."""
    if len(templates) < 2:
        raise ValueError('an ensemble needs at least two patterns, got %d' % len(templates))
    if config.mode not in PET_MODES:
        raise ValueError('--mode %s: an ensemble is of PET models (%s)' % (config.mode, ', '.join(PET_MODES)))
    if generations and config.mode not in ('few-shot', 'semi-supervised'):
        raise ValueError('--generations needs --mode few-shot or semi-supervised (iPET trains on pseudo-labels)')
    if task.valid is None or config.fold_valid:
        raise ValueError(
            'an ensemble needs validation examples: each pattern keeps its best weights on them'
            + ('; leave --fold-valid out' if config.fold_valid else '')
        )
    if config.lexical:
        raise ValueError('--lexical is for a run of one pattern; an ensemble does not take it')
    if config.resume or config.distribute:  # each pattern's run resumes and distributes on its own
        raise ValueError(
            '--resume and --distribute are not supported for an ensemble: train its patterns one by one for those '
            '(the same command again loads each pattern whose run finished)'
        )
    prepared = runner.prepare(task, config, ensemble=True)
    settings = dict(prepared.settings, patterns=list(templates), generations=generations,
                    growth=growth, weighted=weighted, temperature=temperature)  # fmt: skip
    distilled_dir = os.path.join(prepared.out, 'distilled')
    # a finished distillation is read back; one made otherwise is refused now, before any pattern trains
    distilled = finished_classifier(distilled_dir, settings, prepared.labeled + prepared.unlabeled, REUSABLE_IF_CHANGED)
    pvps = {name: runner.task_pvp(task, prepared.checkpoint.tokenizer, t) for name, t in templates.items()}

    # one model per pattern, then their ensemble; iPET grows the labeled set
    records, ensemble = ipet(config, prepared, pvps, presets, generations, growth, weighted)

    # distillation: a [CLS] classifier on the ensemble's soft labels
    if distilled:
        print('distillation: loading the finished run in %s' % distilled_dir)
    student = distilled or distill(config, prepared, ensemble['unlabeled'], distilled_dir, settings)
    results = {
        'settings': settings,
        'generations': records,
        'distilled': {'valid': student['valid'], 'test': student['test']},
    }  # fmt: skip
    write_results(prepared.out, results, pvps)
    return results


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
