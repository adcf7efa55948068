"""Automatic label-word search: the likelihood ratio of PETAL (Schick,
Schmid & Schütze 2020, "Automatically Identifying Words That Can Serve as
Labels for Few-Shot Text Classification").

A good label word for label y is one the masked LM, reading the pattern with
an example, finds much likelier at the slot when the example is of label y
than when it is of another label: such a word separates y from the others
before any training, which is what PET's zero-shot start and its training
signal rely on. So each candidate word w gets, for each label y,

    LR(y, w) = mean over y's examples of log p(w|x)
             − mean over the other labels' examples of log p(w|x),

the log of a likelihood ratio (geometric means of p(w|x)). A word that is
merely frequent (likely everywhere) scores near 0, as does one the model
never predicts; its own label's examples must make it likelier. Each label
takes the k best words, no word serving two labels (a shared word would
score both labels alike).

Candidates are the vocabulary's single CJK characters and the most frequent
2–4 character words of jieba's dictionary that the vocabulary spells one
token per character. log p(w|x) of an L-character word is the sum over the
L-token slot of the log-softmax over the vocabulary (as ``Scorer`` scores
words of several lengths): one forward pass per example and length, and a
gather for all the words of that length.
"""

import dataclasses
import sys
import unicodedata

import numpy as np
import tensorflow as tf

from pet_keras.progress import progress_bar
from pet_keras.io import package_file
from pet_keras.data import read_lines
from pet_keras.pattern import PVP
from pet_keras.verbalizer import Verbalizer
from pet_keras.scoring import cloze_batches

MAX_WORD_LENGTH = 4
CANDIDATES = '[candidates]'  # the one pseudo-label whose words are the candidates


def read_dictionary(path=None):
    """(word, frequency) of a jieba dictionary (``word frequency [tag]`` per
    line; default jieba's bundled dict.txt), in file order."""
    path = path or package_file('jieba', 'dict.txt')
    entries = []
    for number, line in read_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError('%s:%d: expected "word frequency [tag]", found %r' % (path, number, line))
        entries.append((parts[0], int(parts[1])))
    return entries


def spelled_by_characters(tokenizer, word):
    """Whether the tokenizer reads ``word`` as its CJK characters, each a vocabulary token."""
    return all(tokenizer._is_cjk_character(ch) and ch in tokenizer._token_dict for ch in word) and tokenizer.tokenize(
        word
    )[1:-1] == list(word)  # not normalised into other characters


def candidate_words(tokenizer, dictionary=None, top_n=20000, max_length=MAX_WORD_LENGTH):
    """Candidate label words: the vocabulary's single CJK characters (in
    vocabulary order), then the ``top_n`` most frequent words of 2 to
    ``max_length`` characters of ``dictionary`` ((word, frequency) pairs;
    default ``read_dictionary()``) that the vocabulary spells one token per
    character (no [UNK]): each word's token length is its length."""
    chars = [token for token in tokenizer._token_dict if len(token) == 1 and spelled_by_characters(tokenizer, token)]
    entries = read_dictionary() if dictionary is None else dictionary
    words, seen = [], set()
    for word, _ in sorted(entries, key=lambda entry: -entry[1]):  # stable: ties keep file order
        if len(words) == top_n:
            break
        if 2 <= len(word) <= max_length and word not in seen and spelled_by_characters(tokenizer, word):
            words.append(word)
            seen.add(word)
    return chars + words


def word_log_probs(mlm, pvp, examples, batch_size=32, verbose=True):
    """log p(w|x) (examples, words) of every word of ``pvp``'s verbalizer, in
    its word order: for each length, one ``MaskedLM.word_log_prob_model``
    over all the words of that length (the vocabulary log-softmax at the
    slot, then a gather per word). Examples' labels are not read."""
    models = {}
    for length in pvp.slot_lengths:
        index, ids = pvp.words_of_length(length)
        model = mlm.word_log_prob_model(ids, name='label_search_%d' % length)
        # traced once for any batch and sequence length: each function serves a few batches
        spec = [tf.TensorSpec((None, None), 'int32')] * 2 + [tf.TensorSpec((None, length), 'int32')]
        models[length] = index, tf.function(lambda x, model=model: model(x, training=False), input_signature=[spec])
    unlabeled = [dataclasses.replace(e, label=None) for e in examples]
    scores = np.zeros((len(examples), len(pvp.word_ids)), dtype='float32')
    bar = progress_bar(len(examples), unit_name='example') if verbose else None
    done = 0
    for idx, inputs in cloze_batches(pvp, unlabeled, batch_size):
        for n, length in enumerate(pvp.slot_lengths):
            index, model = models[length]
            scores[np.ix_(idx, index)] = model(inputs[3 * n : 3 * n + 3]).numpy()
        done += len(idx)
        if bar:
            bar.update(done)
    return scores


def likelihood_ratios(log_probs, example_labels, labels, lengths=None):
    """LR (labels, words): the mean of ``log_probs`` (examples, words) over
    each label's examples minus their mean over the other labels' examples;
    with ``lengths`` (words,) each log-probability is first divided by its
    word's length (no preference for short words)."""
    log_probs = np.asarray(log_probs, dtype='float64')
    if lengths is not None:
        log_probs = log_probs / np.asarray(lengths)
    unknown = sorted(set(example_labels) - set(labels), key=str)
    if unknown:
        raise ValueError('examples have labels %s, not among %s' % (unknown, list(labels)))
    member = np.array([[label == y for label in example_labels] for y in labels], dtype='float64')
    counts = member.sum(1)
    if not (0 < counts).all() or not (counts < len(example_labels)).all():
        raise ValueError(
            'every label needs examples, and so do the others: counts %s'
            % dict(zip(labels, counts.astype(int).tolist()))
        )
    own = member @ log_probs
    others = log_probs.sum(0) - own
    return own / counts[:, None] - others / (len(example_labels) - counts)[:, None]


def assign(ratios, labels, words, k=1):
    """{label: [(word, LR), ...]} (labels in order, each label's words best
    first): repeatedly the highest-scoring (label, word) pair among the labels
    that still need words and the words not yet given, until each label has
    ``k``. Greedy over the pairs, so no word labels two labels."""
    ratios = np.asarray(ratios)
    if k * len(labels) > len(words):
        raise ValueError('%d labels × %d words need more than the %d candidates' % (len(labels), k, len(words)))
    found = {label: [] for label in labels}
    given = set()
    for flat in np.argsort(-ratios, axis=None, kind='stable'):
        i, j = divmod(int(flat), ratios.shape[1])
        if j not in given and len(found[labels[i]]) < k:
            found[labels[i]].append((words[j], float(ratios[i, j])))
            given.add(j)
            if len(given) == k * len(labels):
                break
    return found


def search(
    mlm,
    pattern,
    tokenizer,
    examples,
    k=1,
    labels=None,
    maxlen=128,
    candidates=None,
    length_norm=False,
    batch_size=32,
    verbose=True,
):
    """The ``k`` best label words per label for ``pattern`` (a template with
    a ____ slot and the examples' fields) on labeled ``examples``:
    {label: [(word, LR), ...]}, labels in ``labels`` order (default: as they
    first occur). ``candidates`` default to ``candidate_words(tokenizer)``;
    ``length_norm`` divides each log-probability by the word's length."""
    labels = list(labels or dict.fromkeys(e.label for e in examples))
    candidates = candidate_words(tokenizer) if candidates is None else list(candidates)
    # the candidates as one pseudo-label's words: PVP spells them, groups them
    # by length and leaves the text the same room at every slot length
    pvp = PVP(pattern, Verbalizer({CANDIDATES: candidates}), tokenizer, maxlen)
    log_probs = word_log_probs(mlm, pvp, examples, batch_size, verbose)
    ratios = likelihood_ratios(log_probs, [e.label for e in examples], labels, pvp.word_length if length_norm else None)
    return assign(ratios, labels, candidates, k)


def label_words_json(found):
    """``search``'s result as the JSON object ``--label-words`` reads: {label: [words]}."""
    return {label: [word for word, _ in pairs] for label, pairs in found.items()}


def _width(text):
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in 'WF' else 1 for ch in text)


def _pad(text, width):
    return text + ' ' * (width - _width(text))


def print_label_words(found, file=None):
    """``search``'s result as a table: label, rank, word, LR (nats)."""
    file = file or sys.stdout
    rows = [
        (label if rank == 1 else '', str(rank), word, '%+.3f' % score)
        for label, pairs in found.items()
        for rank, (word, score) in enumerate(pairs, 1)
    ]
    header = ('label', '#', 'word', 'LR')
    widths = [max(_width(row[c]) for row in rows + [header]) for c in range(3)]
    for row in [header] + rows:
        print('  '.join(_pad(cell, width) for cell, width in zip(row, widths)) + '  ' + row[3].rjust(8), file=file)
