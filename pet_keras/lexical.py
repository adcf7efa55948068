"""The lexical expert: TF-IDF over character n-grams and a linear SVM (scikit-learn) trained on
the labeled examples, its decision scores added to PET's label log-probabilities (``Mixture``).

A bag of characters reads the whole text and learns which characters go with which label; PET
reads the text through a pattern and brings what the masked LM knows of words. They err on
different examples: on the embedded model each alone is level with the other, and their sum is
above both (results/README.md, "PET with a lexical expert"). The n-gram range and C are chosen
on validation (without it, by cross-validation over the labeled examples), then the weight of
the lexical scores in the sum, on validation too (without it: ``DEFAULT_WEIGHT``).
A run folder keeps the expert in lexical.json (labels, n-gram range, vocabulary, weight) and
lexical.npz (idf and the SVM's weights, read without pickle).
"""

import os
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from pet_keras.crossval import FOLDS, fold_splits
from pet_keras.io import atomic_path, read_json, write_json

NGRAM_RANGES = ((1, 1), (1, 2), (1, 3))
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
WEIGHTS = (0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)  # 0: PET alone; 64: the lexical scores all but decide
# without validation data: the weight validation chose on sentiment and on TNEWS (results/README.md)
DEFAULT_WEIGHT = 4
LEXICAL_SPEC = 'lexical.json'
LEXICAL_ARRAYS = 'lexical.npz'


def char_vectorizer(ngram_range, min_df=1, vocabulary=None):
    """The expert's analyzer: character n-grams, sublinear tf × idf at unit length (what
    serving._LexicalScores ports to TensorFlow); ``vocabulary``: a fitted model's."""
    return TfidfVectorizer(
        analyzer='char', ngram_range=tuple(ngram_range), sublinear_tf=True, min_df=min_df, vocabulary=vocabulary
    )


def text_of(example, fields):
    """An example's text for the lexical model: its ``fields`` (the pattern's, in the pattern's
    order) joined by one space, as a server of an exported run builds its ``text`` input."""
    return ' '.join(str(example.fields[name]) for name in fields)


class LexicalModel:
    """Character n-gram TF-IDF (sublinear term frequency, unit length) and one linear score per
    label: ``scores(examples)`` is (examples, labels), higher for the likelier label, divided by
    ``scale``: the spread of the scores on the labeled rows. A strongly regularised SVM (small C)
    scores in hundredths, a weak one in units; so scaled, one weight suits both."""

    def __init__(self, labels, fields, ngram_range, vocabulary, idf, coef, intercept, scale):
        self.labels = list(labels)
        self.fields = list(fields)
        self.ngram_range = tuple(ngram_range)
        self.vectorizer = char_vectorizer(self.ngram_range, vocabulary=list(vocabulary))
        self.vectorizer.idf_ = np.asarray(idf, dtype='float64')
        self.coef = np.asarray(coef, dtype='float32')  # (labels, vocabulary)
        self.intercept = np.asarray(intercept, dtype='float32')  # (labels,)
        self.scale = float(scale)

    @classmethod
    def fit(cls, labeled, labels, fields, valid=None, folds=FOLDS, seed=0, min_df=1):
        """The grid of n-gram ranges and C fitted on ``labeled`` (their text: ``fields`` joined)
        and chosen on ``valid`` (None: on ``folds``-fold cross-validation over ``labeled``),
        refitted on all of ``labeled``: (the model, its record: the choice and its accuracy).
        ``min_df``: keep only n-grams found in at least that many training texts."""
        started = time.time()
        if len({e.label for e in labeled}) < 2:
            raise ValueError('the lexical expert needs labeled examples of at least two labels')
        splits = [(labeled, valid)] if valid else fold_splits(labeled, folds, seed)
        best, grid = None, []
        for ngram in NGRAM_RANGES:
            fitted = []
            for train, held_out in splits:
                vectorizer = char_vectorizer(ngram, min_df)
                x_train = vectorizer.fit_transform([text_of(e, fields) for e in train])
                x_held = vectorizer.transform([text_of(e, fields) for e in held_out])
                fitted.append((x_train, [e.label for e in train], x_held, np.array([e.label for e in held_out])))
            for c in C_GRID:
                accuracy = float(
                    np.mean(
                        [
                            np.mean(LinearSVC(C=c, random_state=seed).fit(x, y).predict(xh) == yh)
                            for x, y, xh, yh in fitted
                        ]
                    )
                )
                grid.append({'ngram_range': list(ngram), 'C': c, 'accuracy': round(accuracy, 4)})
                if best is None or accuracy > best[0]:
                    best = (accuracy, ngram, c)
        accuracy, ngram, c = best
        vectorizer = char_vectorizer(ngram, min_df)
        x_labeled = vectorizer.fit_transform([text_of(e, fields) for e in labeled])
        svm = LinearSVC(C=c, random_state=seed).fit(x_labeled, [e.label for e in labeled])
        coef, intercept = svm.coef_, svm.intercept_
        if len(svm.classes_) == 2:  # one decision function d for the second class: scores -d/2, d/2
            coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        classes = list(svm.classes_)
        rows = [classes.index(label) if label in classes else None for label in labels]
        # a label without labeled examples: no weights, and below every other label's intercept
        floor = float(intercept.min()) - 1.0
        coef = np.stack([coef[r] if r is not None else np.zeros(coef.shape[1]) for r in rows])
        intercept = np.array([intercept[r] if r is not None else floor for r in rows])
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        raw = np.asarray(x_labeled @ coef.T) + intercept
        scale = float(np.std(raw - raw.mean(axis=1, keepdims=True))) or 1.0
        model = cls(labels, fields, ngram, vocabulary, vectorizer.idf_, coef, intercept, scale)
        record = {
            'ngram_range': list(ngram),
            'C': c,
            'chosen_by': 'validation' if valid else '%d-fold cross-validation' % folds,
            'min_df': min_df,
            'valid' if valid else 'cross_validated': accuracy,
            'vocabulary': len(vocabulary),
            'grid': grid,
            'seconds': round(time.time() - started, 2),
        }
        return model, record

    def scores(self, examples):
        """(examples, labels) decision scores."""
        x = self.vectorizer.transform([text_of(e, self.fields) for e in examples])
        return (np.asarray(x @ self.coef.T) + self.intercept) / self.scale

    def save(self, folder, weight):
        """lexical.json and lexical.npz in ``folder``, with the ``weight`` of the scores in a ``Mixture``."""
        spec = {
            'labels': self.labels,
            'fields': self.fields,
            'ngram_range': list(self.ngram_range),
            'weight': weight,
            'vocabulary': self.vectorizer.vocabulary,
        }
        with atomic_path(os.path.join(folder, LEXICAL_ARRAYS)) as tmp, open(tmp, 'wb') as f:
            np.savez_compressed(f, idf=self.vectorizer.idf_, coef=self.coef, intercept=self.intercept, scale=self.scale)
        write_json(os.path.join(folder, LEXICAL_SPEC), spec)

    @classmethod
    def load(cls, folder, fields):
        """(the model saved in ``folder``, its weight); refuses files that do not fit together.
        ``fields``: the pattern's, for a lexical.json written before it recorded its own."""
        spec_path = os.path.join(folder, LEXICAL_SPEC)
        spec = read_json(spec_path)
        try:
            with np.load(os.path.join(folder, LEXICAL_ARRAYS), allow_pickle=False) as arrays:
                idf, coef, intercept, scale = (arrays[k] for k in ('idf', 'coef', 'intercept', 'scale'))
            labels, ngram, vocabulary, weight = (spec[k] for k in ('labels', 'ngram_range', 'vocabulary', 'weight'))
            fields = spec.get('fields', fields)
            shapes_fit = coef.shape == (len(labels), len(vocabulary)) == (len(intercept), len(idf))
            shapes_fit = shapes_fit and bool(fields) and all(isinstance(name, str) for name in fields)
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise ValueError(
                '%s: not the lexical expert a run wrote (%s: %s); restore lexical.json and lexical.npz'
                % (folder, type(e).__name__, e)
            ) from None
        if not shapes_fit or not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise ValueError(
                '%s: lexical.json and lexical.npz do not fit together (labels, fields, vocabulary, weight); '
                'restore the files the run wrote' % folder
            )
        return cls(labels, fields, ngram, vocabulary, idf, coef, intercept, float(scale)), float(weight)


def mix(probs, scores, weight):
    """softmax(log ``probs`` + ``weight`` · ``scores``), row by row."""
    logits = np.log(np.clip(np.asarray(probs, dtype='float64'), 1e-12, None)) + weight * np.asarray(scores)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype('float32')


def choose_weight(probs, scores, truth, weights=WEIGHTS):
    """The weight of ``WEIGHTS`` whose mixture is most accurate on ``truth`` (label indices; the
    smallest on a tie) and {weight: accuracy}."""
    curve = {w: float(np.mean(mix(probs, scores, w).argmax(1) == truth)) for w in weights}
    return max(weights, key=lambda w: (curve[w], -w)), curve


class Mixture:
    """PET's ``Scorer`` and a ``LexicalModel``: label probabilities softmax(log p_PET + weight ·
    lexical scores). Scores like a ``Scorer`` (``predict_proba``, ``accuracy``, ``pvp``)."""

    def __init__(self, scorer, lexical, weight):
        if list(lexical.labels) != list(scorer.pvp.labels):
            raise ValueError(
                'the lexical expert scores labels %s, the pattern %s' % (lexical.labels, scorer.pvp.labels)
            )
        self.scorer, self.lexical, self.weight = scorer, lexical, weight
        self.pvp = scorer.pvp

    def predict_proba(self, examples, verbose=True):
        return mix(self.scorer.predict_proba(examples, verbose), self.lexical.scores(examples), self.weight)

    def accuracy(self, examples, verbose=True):
        truth = np.array([self.pvp.labels.index(e.label) for e in examples])
        return float(np.mean(self.predict_proba(examples, verbose).argmax(1) == truth))


def fit_expert(scorer, labeled, valid, test, folds=FOLDS, seed=0):
    """The lexical expert fitted on ``labeled`` and weighed against ``scorer`` (PET's) on ``valid``
    (None: ``DEFAULT_WEIGHT``): (the ``LexicalModel``, its record: the lexical model alone, the
    weight and its curve, and the mixture's validation and test accuracy)."""
    labels = list(scorer.pvp.labels)
    lexical, record = LexicalModel.fit(labeled, labels, scorer.pvp.pattern.fields, valid, folds, seed)
    result = {'lexical': record}
    weight, result['valid'] = DEFAULT_WEIGHT, None
    if valid:
        truth = np.array([labels.index(e.label) for e in valid])
        weight, curve = choose_weight(scorer.predict_proba(valid, verbose=False), lexical.scores(valid), truth)
        result.update(weights=[{'weight': w, 'valid': a} for w, a in curve.items()], valid=curve[weight])
    result['weight'], result['test'] = weight, None
    if test:
        truth = np.array([labels.index(e.label) for e in test])
        scores = lexical.scores(test)
        record['test'] = float(np.mean(scores.argmax(1) == truth))
        mixed = mix(scorer.predict_proba(test, verbose=False), scores, weight)
        result['test'] = float(np.mean(mixed.argmax(1) == truth))
    return lexical, result
