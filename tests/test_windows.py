"""Long texts read whole (``--windows``): the longest field cut into overlapping windows that
each fit maxlen, every window trained, label log-probabilities averaged over an example's
windows; off, the text is cut at maxlen as before."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import numpy as np

from pet_keras.batching import PetDataGenerator
from pet_keras.pattern import PVP
from pet_keras.scoring import Scorer
from tiny import ex, sharpened_mlm

WORDS = {'positive': ['很'], 'negative': ['不']}
TEXT = '这家酒店的服务很好房间也很干净早餐种类多交通方便离地铁站很近前台的人很热情下次还会再来住'


def pvp(tok, template='____满意。{text}', maxlen=16, windows=True):
    return PVP(template, WORDS, tok, maxlen, windows=windows)


def test_windows_cover_the_text_and_each_fits(tok):
    p = pvp(tok)
    windows = p.text_windows(ex(TEXT, 'positive'))
    room = 16 - 6  # [CLS], the slot, 满意。, [SEP]
    texts = [w.fields['text'] for w in windows]
    assert all(len(t) == room for t in texts) and len(texts) > 2
    assert texts[0] == TEXT[:room] and texts[-1] == TEXT[-room:]  # the last window ends with the text
    starts = [TEXT.index(t) for t in texts]
    assert all(b - a <= room // 2 for a, b in zip(starts, starts[1:]))  # overlapping: nothing skipped
    assert all(len(p.encode(w).token_ids) == 16 and w.label == 'positive' for w in windows)


def test_short_texts_and_windows_off_read_as_before(tok):
    assert pvp(tok).text_windows(ex('很好')) == [ex('很好')]
    assert pvp(tok, windows=False).text_windows(ex(TEXT)) == [ex(TEXT)]
    assert PVP.from_json(pvp(tok).to_json(), tok).windows is True
    assert PVP.from_json({k: v for k, v in pvp(tok).to_json().items() if k != 'windows'}, tok).windows is False


def test_two_fields_cut_the_longest_only(tok):
    p = PVP('{a}？____，{b}', {'same': ['是'], 'different': ['不']}, tok, 24, windows=True)
    windows = p.text_windows(ex(None, a='酒店好吗', b=TEXT))
    assert len(windows) > 1 and all(w.fields['a'] == '酒店好吗' for w in windows)
    assert all(len(p.encode(w).token_ids) <= 24 for w in windows)
    assert ''.join(w.fields['b'] for w in windows[:1]) == TEXT[: len(windows[0].fields['b'])]


def test_scores_average_the_windows_log_probabilities(tok, tmp_path):
    mlm = sharpened_mlm(len(tok._token_dict), tmp_path)
    windowed, cut = Scorer(mlm, pvp(tok)), Scorer(mlm, pvp(tok, windows=False))
    examples = [ex(TEXT), ex('很好'), ex(TEXT[::-1])]
    probs = windowed.predict_proba(examples, verbose=False)
    for example, row in zip(examples, probs):
        each = cut.predict_proba(pvp(tok).text_windows(example), verbose=False)
        mean = np.log(each).mean(0)
        np.testing.assert_allclose(row, np.exp(mean) / np.exp(mean).sum(), rtol=1e-5)
    assert not np.allclose(probs[0], cut.predict_proba([examples[0]], verbose=False)[0])  # not the first window


def test_every_window_trains(tok):
    labeled = [ex(TEXT, 'positive'), ex('不好', 'negative')]
    windows = len(pvp(tok).text_windows(labeled[0]))
    assert len(PetDataGenerator(pvp(tok), labeled, batch_size=2).data) == windows + 1
    assert len(PetDataGenerator(pvp(tok, windows=False), labeled, batch_size=2).data) == 2
