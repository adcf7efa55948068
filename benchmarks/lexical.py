#!/usr/bin/env python
"""The lexical baseline: what a user would try before pet_keras.

TF-IDF over character n-grams (scikit-learn's TfidfVectorizer, sublinear term
frequency) and a linear SVM (LinearSVC), trained on exactly the labeled rows
pet_keras trains on: pet_keras.lexical's model, which few-shot runs add to PET by default.
The n-gram range (1-1, 1-2, 1-3) and the regularisation C (0.03-10) are chosen on
validation accuracy (with --folds K instead: on the mean held-out accuracy of K-fold
cross-validation over the labeled rows, the folds pet_keras.crossval deals, then refit on all
of them, as `pet-keras train` without --valid does); test accuracy is of that choice.
It reads the whole text, however long. A second or so per task.

    python benchmarks/lexical.py                    # sentiment, TNEWS, IFLYTEK from ../shared
    python benchmarks/lexical.py --tasks sentiment --out results/lexical.json

``benchmarks/accuracy.py --modes lexical`` puts the same row in its grid.
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def lexical_baseline(labeled, valid, test, seed=0, folds=None, min_df=1):
    """pet_keras.lexical's model fitted on ``labeled`` (data.Example lists), chosen on ``valid``
    (``folds``: on cross-validation over ``labeled`` instead, then refit on all of it; ``min_df``:
    n-grams of at least that many texts); the record: the choice's valid (cross-validated) and test
    accuracy, the choice, its vocabulary's size, and the grid's accuracies."""
    from pet_keras.crossval import FOLDS
    from pet_keras.lexical import LexicalModel

    labels = sorted({e.label for e in list(labeled) + list(valid or []) + list(test or [])})
    fields = list(labeled[0].fields)  # the benchmarks' tasks: one text field, or a pair in reading order
    model, record = LexicalModel.fit(labeled, labels, fields, None if folds else valid, folds or FOLDS, seed, min_df)
    test_accuracy = None
    if test:
        truth = np.array([labels.index(e.label) for e in test])
        test_accuracy = float(np.mean(model.scores(test).argmax(1) == truth))
    return {
        'valid': record.get('valid', record.get('cross_validated')),
        'test': test_accuracy,
        'ngram_range': record['ngram_range'],
        'C': record['C'],
        'min_df': min_df,
        'vocabulary': record['vocabulary'],
        'grid': [{'ngram_range': g['ngram_range'], 'C': g['C'], 'valid': g['accuracy']} for g in record['grid']],
        'chosen_by': record['chosen_by'],
        'labeled': len(labeled),
        'seconds': record['seconds'],
    }


def load_tasks(names, shared):
    """{task: (labeled, valid, test)} as pet_keras' benchmarks read them: sentiment's first 1% of
    train labeled (scripts/sentiment.py), TNEWS and IFLYTEK's few-shot training sets, full dev and test."""
    from pet_keras.data import read_jsonl, split_labeled
    from pet_keras.presets import load_sentiment, read_news

    tasks = {}
    if 'sentiment' in names:
        train, valid, test = load_sentiment(shared / 'sentiment')
        tasks['sentiment'] = (split_labeled(train, 0.01)[0], list(valid), list(test))
    if 'tnews' in names:
        folder = shared / 'tnews'
        tasks['tnews'] = tuple(
            list(read_news(folder / name)) for name in ('train_few_all.json', 'dev_few_all.json', 'test_public.json')
        )
    if 'iflytek' in names:
        folder = shared / 'iflytek'
        tasks['iflytek'] = tuple(
            list(read_jsonl(folder / name, {'text': 'sentence'}, 'label_des'))
            for name in ('train_few_all.json', 'dev_few_all.json', 'test_public.json')
        )
    return tasks


def main(argv=None):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common  # noqa: E402  (imports pet_keras first)

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--tasks', nargs='+', choices=('sentiment', 'tnews', 'iflytek'), default=['sentiment', 'tnews', 'iflytek']
    )
    p.add_argument('--data-dir', default=str(common.SHARED / 'datasets'), help='holds sentiment/, tnews/, iflytek/')
    p.add_argument('--folds', type=int, help='choose by K-fold cross-validation over the labeled rows, not validation')
    p.add_argument('--min-df', type=int, default=1, help='keep only n-grams found in at least N labeled texts')
    p.add_argument('--out', help='write the records as JSON here')
    args = p.parse_args(argv)
    records = {}
    for name, (labeled, valid, test) in load_tasks(args.tasks, Path(args.data_dir)).items():
        records[name] = lexical_baseline(labeled, valid, test, folds=args.folds, min_df=args.min_df)
        r = records[name]
        print(
            '%s: labeled %d, valid %.2f, test %.2f (char %d-%d grams, C %g, %d n-grams; %.1f s)'
            % (name, r['labeled'], 100 * r['valid'], 100 * r['test'], *r['ngram_range'], r['C'], r['vocabulary'],
               r['seconds'])
        )  # fmt: skip
    if args.out:
        common.write_json(
            args.out,
            {
                'command': common.command_line('benchmarks/lexical.py', sys.argv[1:]),
                'machine': common.machine_info(),
                'tasks': records,
            },
        )


if __name__ == '__main__':
    main()
