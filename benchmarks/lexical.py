#!/usr/bin/env python
"""The lexical baseline: what a user would try before pet_keras.

TF-IDF over character n-grams (scikit-learn's TfidfVectorizer, sublinear term
frequency) and a linear SVM (LinearSVC), trained on exactly the labeled rows
pet_keras trains on. The n-gram range (1-1, 1-2, 1-3) and the regularisation
C (0.03-10) are chosen on validation accuracy (with --folds K instead: on the mean held-out
accuracy of K-fold cross-validation over the labeled rows, the folds pet_keras.crossval
deals, then refit on all of them, as `pet-keras train` without --valid does); test accuracy
is of that choice. It reads the whole text, however long. A second or so per task.

    python benchmarks/lexical.py                    # sentiment, TNEWS, IFLYTEK from ../shared
    python benchmarks/lexical.py --tasks sentiment --out results/lexical.json

``benchmarks/accuracy.py --modes lexical`` puts the same row in its grid.
Needs scikit-learn (benchmarks/requirements.txt).
"""

import argparse
import sys
import time

import numpy as np
from pathlib import Path

NGRAMS = ((1, 1), (1, 2), (1, 3))
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def text_of(example):
    """An example's text: its fields' values, in order."""
    return ' '.join(str(v) for v in example.fields.values())


def lexical_baseline(labeled, valid, test, seed=0, folds=None):
    """Fit the grid on ``labeled`` (data.Example lists), choose on ``valid`` (``folds``: on
    cross-validation over ``labeled`` instead, then refit on all of it); the record: the
    choice's valid (cross-validated) and test accuracy, the choice, and the grid's accuracies."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC
    except ImportError:
        message = 'the lexical baseline needs scikit-learn: pip install -r benchmarks/requirements.txt'
        raise SystemExit(message) from None

    def vectorized(train, held_out, ngram):
        """(vectorizer, train features and labels, held-out features and labels): one TF-IDF fit."""
        vectorizer = TfidfVectorizer(analyzer='char', ngram_range=ngram, sublinear_tf=True)
        x_train = vectorizer.fit_transform([text_of(e) for e in train])
        x_held = vectorizer.transform([text_of(e) for e in held_out]) if held_out else None
        return vectorizer, (x_train, [e.label for e in train]), (x_held, [e.label for e in held_out or ()])

    started = time.time()
    if folds:
        from pet_keras.crossval import fold_splits

        splits = fold_splits(labeled, folds, seed)
    else:
        splits = [(labeled, valid)]
    grid, best = [], None
    for ngram in NGRAMS:
        features = [vectorized(train, held, ngram)[1:] for train, held in splits]  # once per split, for every C
        for c in C_GRID:
            accuracy = float(
                np.mean(
                    [
                        (LinearSVC(C=c, random_state=seed).fit(*train).predict(held[0]) == held[1]).mean()
                        for train, held in features
                    ]
                )
            )
            grid.append({'ngram_range': list(ngram), 'C': c, 'valid': round(accuracy, 4)})
            if best is None or accuracy > best[0]:
                best = (accuracy, ngram, c)
    accuracy, ngram, c = best
    vectorizer, (x_train, y_train), _ = vectorized(labeled, None, ngram)
    model = LinearSVC(C=c, random_state=seed).fit(x_train, y_train)
    test_accuracy = None
    if test:
        test_accuracy = float(
            (model.predict(vectorizer.transform([text_of(e) for e in test])) == [e.label for e in test]).mean()
        )
    return {
        'valid': accuracy,
        'test': test_accuracy,
        'ngram_range': list(ngram),
        'C': c,
        'grid': grid,
        'chosen_by': '%d-fold cross-validation' % folds if folds else 'validation',
        'labeled': len(labeled),
        'seconds': round(time.time() - started, 2),
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
    p.add_argument('--out', help='write the records as JSON here')
    args = p.parse_args(argv)
    records = {}
    for name, (labeled, valid, test) in load_tasks(args.tasks, Path(args.data_dir)).items():
        records[name] = lexical_baseline(labeled, valid, test, folds=args.folds)
        r = records[name]
        print(
            '%s: labeled %d, valid %.2f, test %.2f (char %d-%d grams, C %g; %.1f s)'
            % (name, r['labeled'], 100 * r['valid'], 100 * r['test'], *r['ngram_range'], r['C'], r['seconds'])
        )
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
