"""Pattern + verbalizer: a task as data.

A *pattern* is a template with one mask slot ``____`` (a run of underscores)
and text fields in braces: ``____满意。{text}``, ``{text}____满意。``,
``{a}？____，{b}``. A *verbalizer* maps each label to one or more words; all
words are read at the slot, so they must have the same number of tokens, and
that number is the slot's length. ``PVP`` binds both to a tokenizer and
builds the cloze inputs; when they exceed ``maxlen`` only the fields are cut
(longest first, from the end), so the pattern and the slot always survive.
"""
import json
import os
import re

import numpy as np
import tensorflow as tf

from bert4keras.snippets import truncate_sequences

_PART = re.compile(r'(_{2,}|\{[A-Za-z_]\w*\})')

SENTIMENT_PATTERNS = {
    'P1': '____满意。{text}',
    'P2': '{text}____满意。',
    'P3': '____好。{text}',
    'P4': '____理想。{text}',
    'P5': '感觉如何？____满意。{text}',
}
SENTIMENT_WORDS = {'negative': ['不'], 'positive': ['很']}
# several words per label (each one token in the Chinese BERT vocabulary)
SENTIMENT_WORDS_MULTI = {'negative': ['不', '难'], 'positive': ['很', '挺', '太']}
NEWS_PATTERNS = {
    'N1': '下面报导一则____新闻。{text}',
    'N2': '{text}（____新闻）',
}
# sentence pairs (fields a, b), answered yes (是的) or no (不是)
PAIR_PATTERNS = {'Q1': '{a}？____，{b}', 'Q2': '{a}；{b}。两句话意思相同吗？____。'}
PAIR_WORDS = {'different': ['不是'], 'same': ['是的']}
AGGREGATIONS = ('sum', 'mean', 'max')


class Pattern:
    """A parsed template: literal text, ``{field}`` slots for the example's
    texts and exactly one mask slot."""

    def __init__(self, template):
        self.template = template
        self.parts = []  # ('literal', str) | ('field', name) | ('slot', None)
        for piece in _PART.split(template):
            if not piece:
                continue
            if piece.startswith('__'):
                self.parts.append(('slot', None))
            elif piece.startswith('{'):
                self.parts.append(('field', piece[1:-1]))
            else:
                self.parts.append(('literal', piece))
        slots = sum(kind == 'slot' for kind, _ in self.parts)
        if slots != 1:
            raise ValueError('pattern %r must have exactly one mask slot ____, found %d' % (template, slots))
        self.fields = [name for kind, name in self.parts if kind == 'field']
        if not self.fields:
            raise ValueError('pattern %r has no text field such as {text}' % template)

    def __repr__(self):
        return 'Pattern(%r)' % self.template


class Verbalizer:
    """Label → words. ``aggregation`` combines several words of one label
    into its score: ``sum`` of their probabilities, ``mean`` of their
    log-probabilities (a geometric mean), or ``max`` (the likeliest word); the
    label distribution is the scores normalised over the labels."""

    def __init__(self, label_words, aggregation='sum'):
        if not label_words:
            raise ValueError('verbalizer has no labels')
        if aggregation not in AGGREGATIONS:
            raise ValueError('aggregation must be one of %s, got %r' % (AGGREGATIONS, aggregation))
        self.label_words = {}
        for label, words in label_words.items():
            words = [words] if isinstance(words, str) else words
            if not isinstance(words, (list, tuple)) or not words \
                    or not all(isinstance(w, str) and w.strip() for w in words):
                raise ValueError('label %r has no (non-empty) words: expected a word or a list of words, got %r'
                                 % (label, words))
            self.label_words[str(label)] = list(words)
        seen = {}
        for label, words in self.label_words.items():
            for word in words:
                if word in seen:  # one word scoring two labels (or twice one) makes the scores ambiguous
                    raise ValueError('label word %r is given twice (labels %r and %r)' % (word, seen[word], label))
                seen[word] = label
        self.labels = list(self.label_words)
        self.aggregation = aggregation

    def __repr__(self):
        return 'Verbalizer(%r, aggregation=%r)' % (self.label_words, self.aggregation)


class Encoded:
    """One example as model input: token ids, segment ids, the slot's
    positions and (for labeled examples) the label's index."""
    __slots__ = ('token_ids', 'segment_ids', 'slots', 'label')

    def __init__(self, token_ids, segment_ids, slots, label):
        self.token_ids, self.segment_ids, self.slots, self.label = token_ids, segment_ids, slots, label


class PVP:
    """A pattern-verbalizer pair bound to a tokenizer and a maximum length."""

    def __init__(self, pattern, verbalizer, tokenizer, maxlen=128):
        self.pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        self.verbalizer = verbalizer if isinstance(verbalizer, Verbalizer) else Verbalizer(verbalizer)
        self.tokenizer = tokenizer
        self.maxlen = maxlen
        self.labels = self.verbalizer.labels
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        words, word_label, lengths = [], [], {}
        for label in self.labels:
            for word in self.verbalizer.label_words[label]:
                ids = tokenizer.encode(word)[0][1:-1]
                if tokenizer._token_unk_id in ids or not ids:
                    raise ValueError('label word %r (label %r) tokenizes to %s: not in the vocabulary'
                                     % (word, label, tokenizer.ids_to_tokens(ids)))
                lengths.setdefault(len(ids), []).append(word)
                words.append(ids)
                word_label.append(self.label_index[label])
        if len(lengths) > 1:
            raise ValueError('label words must have the same number of tokens to share one slot; got %s'
                             % '; '.join('%d: %s' % (n, ', '.join(w)) for n, w in sorted(lengths.items())))
        self.label_token_ids = np.array(words, dtype='int32')  # (words, slot length)
        self.word_label = np.array(word_label, dtype='int32')  # (words,)
        self.slot_length = self.label_token_ids.shape[1]
        self._literals = {
            i: tokenizer.tokens_to_ids(tokenizer.tokenize(text)[1:-1])
            for i, (kind, text) in enumerate(self.pattern.parts) if kind == 'literal'
        }
        for i, ids in self._literals.items():
            if tokenizer._token_unk_id in ids:  # e.g. curly quotes, absent from the Chinese BERT vocabulary
                raise ValueError('pattern %r: its text %r tokenizes to %s: not in the vocabulary'
                                 % (self.pattern.template, self.pattern.parts[i][1], tokenizer.ids_to_tokens(ids)))
        fixed = 2 + self.slot_length + sum(len(ids) for ids in self._literals.values())
        if fixed + len(self.pattern.fields) > maxlen:
            raise ValueError('maxlen %d leaves no room for text in pattern %r (%d tokens without the text)'
                             % (maxlen, self.pattern.template, fixed))
        self._room = maxlen - fixed

    def text_ids(self, text):
        return self.tokenizer.tokens_to_ids(self.tokenizer.tokenize(text)[1:-1])

    def encode(self, example):
        """The cloze input for an example (its fields filled in, the slot masked)."""
        missing = [f for f in self.pattern.fields if f not in example.fields]
        if missing:
            raise ValueError('%s: example has no field %s required by pattern %r'
                             % (example.source, ', '.join(missing), self.pattern.template))
        fields = [self.text_ids(example.fields[name]) for name in self.pattern.fields]
        truncate_sequences(self._room, -1, *fields)
        tok = self.tokenizer
        token_ids, slots, filled = [tok._token_start_id], None, iter(fields)
        for i, (kind, _) in enumerate(self.pattern.parts):
            if kind == 'literal':
                token_ids.extend(self._literals[i])
            elif kind == 'field':
                token_ids.extend(next(filled))
            else:
                slots = list(range(len(token_ids), len(token_ids) + self.slot_length))
                token_ids.extend([tok._token_mask_id] * self.slot_length)
        token_ids.append(tok._token_end_id)
        return Encoded(token_ids, [0] * len(token_ids), slots, self._label(example))

    def encode_plain(self, example):
        """The example's text without the pattern (unlabeled MLM data, as in
        the reference): one field as one segment, two as a sentence pair."""
        texts = [example.fields[name] for name in self.pattern.fields if name in example.fields]
        token_ids, segment_ids = self.tokenizer.encode(*texts[:2], maxlen=self.maxlen)
        return Encoded(token_ids, segment_ids, None, None)

    def _label(self, example):
        if example.label is None:
            return None
        if example.label not in self.label_index:
            raise ValueError('%s: label %r is not in the verbalizer (%s)'
                             % (example.source, example.label, ', '.join(self.labels)))
        return self.label_index[example.label]

    def class_logits(self, word_scores):
        """Per-label scores (batch, labels) from per-word slot logits (batch, words),
        up to one constant per example, so their softmax is the label distribution.

        A word's log-probability is its logit minus the slot's log-normaliser,
        the same for every word, so: ``sum`` → logsumexp of the label's logits
        (log of the summed probabilities), ``mean`` → their mean (mean
        log-probability), ``max`` → their maximum."""
        member = tf.one_hot(self.word_label, len(self.labels), dtype=word_scores.dtype)  # (words, labels)
        if self.verbalizer.aggregation == 'mean':
            return tf.matmul(word_scores, member) / tf.reduce_sum(member, 0)
        masked = word_scores[:, :, None] + tf.math.log(member)[None]  # -inf off the label
        if self.verbalizer.aggregation == 'sum':
            return tf.reduce_logsumexp(masked, axis=1)
        return tf.reduce_max(masked, axis=1)

    def to_json(self):
        return {'pattern': self.pattern.template, 'label_words': self.verbalizer.label_words,
                'aggregation': self.verbalizer.aggregation, 'maxlen': self.maxlen}

    @classmethod
    def from_json(cls, spec, tokenizer):
        return cls(spec['pattern'], Verbalizer(spec['label_words'], spec.get('aggregation', 'sum')),
                   tokenizer, spec.get('maxlen', 128))

    def save(self, path):
        """Write ``to_json()`` to ``path`` through a temporary file and a rename: never half-written."""
        tmp = '%s.tmp' % path
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=2)
        os.replace(tmp, path)
