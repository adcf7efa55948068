"""Pattern + verbalizer: a task as data, bound to a tokenizer (``PVP``).

A *pattern* is a template with one mask slot ``____`` (a run of underscores) and
text fields in braces: ``____满意。{text}``, ``{text}____满意。``, ``{a}？____，{b}``.
``[P]`` is a learned prompt token (P-tuning, Liu et al. 2021): the n-th ``[P]``
reads as the vocabulary's ``[unused<n>]``, a token no text holds, whose
embedding training learns (``[P][P]____[P][P]{text}``). A *verbalizer* maps each
label to one or more words. A word of L tokens is read from the cloze whose slot
holds L [MASK] tokens, so a task whose words have several lengths is scored from
one cloze per length (``PVP.slot_lengths``). ``PVP`` binds both to a tokenizer
and builds the cloze inputs; when they exceed ``maxlen`` only the fields are cut
(longest first, from the end), so the pattern and the slot always survive, and
the text is the same at every slot length. With ``windows`` a text too long for
``maxlen`` is read whole instead: its longest field is cut into overlapping
windows that each fit (``PVP.text_windows``), every window trains, and an
example's label log-probabilities are averaged over its windows
(``pet_keras.scoring``). The scores' TensorFlow math is ``pet_keras.scoring``'s.
"""

import re

import numpy as np

from bert4keras.snippets import truncate_sequences
from pet_keras.data import Example
from pet_keras.io import write_json
from pet_keras.verbalizer import Verbalizer

_PART = re.compile(r'(_{2,}|\{[A-Za-z_]\w*\}|\[P\])')
PROMPT = '[P]'


class Pattern:
    """A parsed template: literal text, ``{field}`` slots for the example's
    texts, learned prompt tokens ``[P]`` and exactly one mask slot."""

    def __init__(self, template):
        self.template = template
        self.parts = []  # ('literal', str) | ('field', name) | ('slot', None) | ('prompt', n), n = 1, 2 …
        for piece in _PART.split(template):
            if not piece:
                continue
            if piece == PROMPT:
                self.parts.append(('prompt', 1 + sum(kind == 'prompt' for kind, _ in self.parts)))
            elif piece.startswith('__'):
                self.parts.append(('slot', None))
            elif piece.startswith('{'):
                self.parts.append(('field', piece[1:-1]))
            else:
                self.parts.append(('literal', piece))
        slots = sum(kind == 'slot' for kind, _ in self.parts)
        if slots != 1:
            raise ValueError(
                'pattern %r must have exactly one mask slot ____, found %d (write ____ once, where the label word '
                'goes)' % (template, slots)
            )
        # a field may appear twice ({text}…____…{text}): it fills both places, and is one input
        self.field_places = [name for kind, name in self.parts if kind == 'field']
        self.fields = list(dict.fromkeys(self.field_places))
        if not self.fields:
            raise ValueError("pattern %r has no text field (add the data's, e.g. {text})" % template)

    def __repr__(self):
        return 'Pattern(%r)' % self.template


class Encoded:
    """One example as model input: token ids, segment ids, the slot's
    positions and (for labeled examples) the label's index. ``at_length``:
    the same cloze for each slot length its label's words need (training)."""

    __slots__ = ('token_ids', 'segment_ids', 'slots', 'label', 'at_length')

    def __init__(self, token_ids, segment_ids, slots, label, at_length=None):
        self.token_ids, self.segment_ids, self.slots, self.label = token_ids, segment_ids, slots, label
        self.at_length = at_length


class PVP:
    """A pattern-verbalizer pair bound to a tokenizer and a maximum length."""

    def _words_in_order(self):
        return [word for label in self.labels for word in self.verbalizer.label_words[label]]

    def __init__(self, pattern, verbalizer, tokenizer, maxlen=128, windows=False):
        self.pattern = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        self.windows = bool(windows)
        self.verbalizer = verbalizer if isinstance(verbalizer, Verbalizer) else Verbalizer(verbalizer)
        self.tokenizer = tokenizer
        self.maxlen = maxlen
        self.labels = self.verbalizer.labels
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        words, word_label, unspellable = [], [], []
        for label in self.labels:
            for word in self.verbalizer.label_words[label]:
                ids = tokenizer.encode(word)[0][1:-1]
                if tokenizer._token_unk_id in ids or not ids:
                    unspellable.append('%r (label %r) tokenizes to %s' % (word, label, tokenizer.ids_to_tokens(ids)))
                words.append(ids)
                word_label.append(self.label_index[label])
        if unspellable:
            raise ValueError(
                'label words not in the vocabulary: %s (give other words for these labels)' % '; '.join(unspellable)
            )
        spelled = {}  # words the tokenizer makes the same (case, spaces) cannot tell their labels apart
        for ids, label_index, word in zip(words, word_label, self._words_in_order()):
            other = spelled.setdefault(tuple(ids), (label_index, word))
            if other[0] != label_index:
                raise ValueError(
                    'label words %r (label %r) and %r (label %r) are the same tokens %s for this vocabulary, so '
                    'those labels could not be told apart (give them different words)'
                    % (other[1], self.labels[other[0]], word, self.labels[label_index], tokenizer.ids_to_tokens(ids))
                )
        self.word_ids = words  # token ids of each word, in label order
        self.word_label = np.array(word_label, dtype='int32')  # (words,)
        self.word_length = np.array([len(ids) for ids in words], dtype='int32')
        self.slot_lengths = tuple(sorted(set(self.word_length.tolist())))
        self.slot_length = self.slot_lengths[-1]  # the longest: the room the text leaves is the same for all
        prompts = [n for kind, n in self.pattern.parts if kind == 'prompt']
        if prompts and '[unused%d]' % prompts[-1] not in tokenizer._token_dict:
            raise ValueError(
                'pattern %r has %d learned tokens [P], read as [unused1] … [unused%d]; the vocabulary has no '
                '[unused%d] (use fewer [P])' % (self.pattern.template, len(prompts), len(prompts), len(prompts))
            )
        # the token ids of each part but the fields and the slot: literal text, or a prompt's [unused<n>]
        self._literals = {
            i: tokenizer.tokens_to_ids(tokenizer.tokenize(text)[1:-1])
            if kind == 'literal'
            else [tokenizer._token_dict['[unused%d]' % text]]
            for i, (kind, text) in enumerate(self.pattern.parts)
            if kind in ('literal', 'prompt')
        }
        self.prompt_ids = [self._literals[i][0] for i, (kind, _) in enumerate(self.pattern.parts) if kind == 'prompt']
        for i, ids in self._literals.items():
            if tokenizer._token_unk_id in ids:  # e.g. curly quotes, absent from the Chinese BERT vocabulary
                raise ValueError(
                    'pattern %r: its text %r tokenizes to %s: not in the vocabulary'
                    % (self.pattern.template, self.pattern.parts[i][1], tokenizer.ids_to_tokens(ids))
                )
        fixed = 2 + self.slot_length + sum(len(ids) for ids in self._literals.values())
        if fixed + len(self.pattern.field_places) > maxlen:
            raise ValueError(
                'maxlen %d leaves no room for text in pattern %r (%d tokens without the text)'
                % (maxlen, self.pattern.template, fixed)
            )
        self._room = maxlen - fixed

    def text_ids(self, text):
        return self.tokenizer.tokens_to_ids(self.tokenizer.tokenize(text)[1:-1])

    @property
    def label_token_ids(self):
        """(words, slot length) token ids, when every word has one length."""
        if len(self.slot_lengths) > 1:
            raise ValueError('label words of %s tokens: use words_of_length' % ', '.join(map(str, self.slot_lengths)))
        return np.array(self.word_ids, dtype='int32')

    def words_of_length(self, length):
        """(indices of the words of ``length`` tokens, their token ids (n, length))."""
        index = np.flatnonzero(self.word_length == length)
        return index, np.array([self.word_ids[i] for i in index], dtype='int32').reshape(len(index), length)

    def encode(self, example, length=None):
        """The cloze input for an example (its fields filled in, the slot
        masked with ``length`` [MASK] tokens; default: the longest word's)."""
        length = self.slot_length if length is None else length
        missing = [f for f in self.pattern.fields if f not in example.fields]
        if missing:
            raise ValueError(
                '%s: example has no field %s required by pattern %r'
                % (example.source, ', '.join(missing), self.pattern.template)
            )
        fields = [self.text_ids(example.fields[name]) for name in self.pattern.field_places]
        truncate_sequences(self._room, -1, *fields)
        tok = self.tokenizer
        token_ids, slots, filled = [tok._token_start_id], None, iter(fields)
        for i, (kind, _) in enumerate(self.pattern.parts):
            if kind in ('literal', 'prompt'):
                token_ids.extend(self._literals[i])
            elif kind == 'field':
                token_ids.extend(next(filled))
            else:
                slots = list(range(len(token_ids), len(token_ids) + length))
                token_ids.extend([tok._token_mask_id] * length)
        token_ids.append(tok._token_end_id)
        return Encoded(token_ids, [0] * len(token_ids), slots, self._label(example))

    def text_windows(self, example):
        """The example as the model reads it: itself when its fields fit ``maxlen`` or
        ``windows`` is off (the fields are then cut), else copies whose longest field is
        one window of it, windows half a window apart and the last ending with the text,
        each fitting ``maxlen`` with the pattern (a character is at most one token)."""
        if not self.windows:
            return [example]
        places = {name: self.pattern.field_places.count(name) for name in self.pattern.fields}
        tokens = {name: len(self.text_ids(example.fields[name])) * count for name, count in places.items()}
        if sum(tokens.values()) <= self._room:
            return [example]
        longest = max(tokens, key=tokens.get)
        size = max(1, (self._room - sum(tokens.values()) + tokens[longest]) // places[longest])
        text = example.fields[longest]
        if len(text) <= size:
            return [example]
        starts = list(range(0, len(text) - size + 1, max(1, size // 2)))
        if starts[-1] + size < len(text):
            starts.append(len(text) - size)
        return [
            Example(dict(example.fields, **{longest: text[start : start + size]}), example.label, example.source)
            for start in starts
        ]

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
            raise ValueError(
                '%s: label %r is not in the verbalizer (%s)' % (example.source, example.label, ', '.join(self.labels))
            )
        return self.label_index[example.label]

    def encode_training(self, example):
        """``encode`` for training: a labeled example also carries its cloze at
        the length of each of its label's words (``at_length``), so each word
        is trained at its own length."""
        encoded = self.encode(example)
        if encoded.label is not None:
            lengths = set(self.word_length[self.word_label == encoded.label].tolist())
            encoded.at_length = {n: encoded if n == self.slot_length else self.encode(example, n) for n in lengths}
        return encoded

    def to_json(self):
        return {
            'pattern': self.pattern.template,
            'label_words': self.verbalizer.label_words,
            'aggregation': self.verbalizer.aggregation,
            'length_norm': self.verbalizer.length_norm,
            'maxlen': self.maxlen,
            'windows': self.windows,
        }

    @classmethod
    def from_json(cls, spec, tokenizer):
        verbalizer = Verbalizer(spec['label_words'], spec.get('aggregation', 'sum'), spec.get('length_norm', False))
        return cls(spec['pattern'], verbalizer, tokenizer, spec.get('maxlen', 128), spec.get('windows', False))

    def save(self, path):
        """Write ``to_json()`` to ``path`` through a temporary file and a rename: never half-written."""
        write_json(path, self.to_json())
