"""Inputs that used to give a wrong result without a word now give one clear line (or the right result)."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import shutil

import pytest

from pet_keras import commands
from pet_keras.data import read_jsonl, read_lines, read_tsv
from pet_keras.pattern import PVP
from pet_keras.verbalizer import Verbalizer
from tiny import make_tokenizer
from test_inputs_read_only import checkpoint, jsonl, run_folder, task_files, train_argv  # noqa: F401  (fixtures)


def test_label_words_the_tokenizer_makes_the_same_are_refused():
    tok = make_tokenizer()
    with pytest.raises(ValueError, match=r"label words '很' \(label 'good'\) and '很 ' \(label 'bad'\) are the same"):
        PVP('____{text}', Verbalizer({'good': ['很'], 'bad': ['很 ']}), tok)
    with pytest.raises(ValueError, match='are the same tokens'):
        PVP('____{text}', Verbalizer({'good': ['a'], 'bad': ['A']}), tok)  # an uncased vocabulary
    PVP('____{text}', Verbalizer({'good': ['很', '好'], 'bad': ['不']}), tok)  # distinct words still load


@pytest.mark.parametrize(
    'label, kind', [('null', 'null'), ('{"a": 1}', 'dict'), ('[1]', 'list'), ('1.0', 'float'), ('true', 'bool')]
)
def test_a_label_that_is_not_a_string_or_an_integer_is_refused_with_its_line(tmp_path, label, kind):
    path = tmp_path / 'x.jsonl'
    path.write_text('{"text": "好", "label": 1}\n{"text": "坏", "label": %s}\n' % label, encoding='utf-8')
    with pytest.raises(ValueError, match=r'x.jsonl:2: label .* is %s; expected a string or an integer' % kind):
        read_jsonl(str(path), {'text': 'text'}, 'label')


def test_integer_and_string_labels_read_as_before(tmp_path):
    path = jsonl(tmp_path / 'x.jsonl', [{'text': '好', 'label': 1}, {'text': '坏', 'label': '0'}])
    assert [e.label for e in read_jsonl(str(path), {'text': 'text'}, 'label')] == ['1', '0']


@pytest.mark.parametrize('ending', ['\n', '\r\n', '\r'])
def test_lf_crlf_and_cr_all_end_a_line(tmp_path, ending):
    path = tmp_path / 'x.tsv'
    path.write_bytes(ending.join(['春天\t1', '秋天\t0', '', '冬天\t0']).encode('utf-8') + ending.encode())
    assert [number for number, _ in read_lines(str(path))] == [1, 2, 3, 4]
    data = read_tsv(str(path))
    assert [(e.fields['text'], e.label, e.source[-1]) for e in data] == [
        ('春天', '1', '1'),
        ('秋天', '0', '2'),
        ('冬天', '0', '4'),
    ]
    assert data.skipped == 1


def test_a_task_with_one_label_is_refused(checkpoint, tmp_path, capsys):  # noqa: F811
    rows = [{'text': t, 'label': 'good'} for t in ('春天很好', '花草很美', '风雨很大')]
    files = {split: jsonl(tmp_path / ('%s.jsonl' % split), rows) for split in ('train', 'valid', 'test')}
    argv = ['train', '--checkpoint-dir', str(checkpoint), '--pattern', '____{text}', '--mode', 'zero-shot']
    argv += ['--out', str(tmp_path / 'out')] + sum((['--' + s, str(p)] for s, p in files.items()), [])
    with pytest.raises(SystemExit) as stop:
        commands.main(argv)
    assert stop.value.code == 2
    assert "every row has the label 'good'; classification needs at least two labels" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_resume_with_fewer_steps_than_done_is_refused(checkpoint, tmp_path, capsys, monkeypatch):  # noqa: F811
    out = tmp_path / 'run'
    argv = interrupted_run(checkpoint, task_files(tmp_path / 'data'), out, monkeypatch)
    argv[argv.index('--steps') + 1] = '2'
    line = resume_error(argv, capsys)
    assert '--steps 2: the run in %s has already trained 4 steps' % out in line, line
    assert not json.loads((out / 'run.json').read_text(encoding='utf-8'))['finished']


@pytest.mark.parametrize(
    'results, problem',
    [
        ('[]', 'expected a JSON object, found list'),
        ('{"calibrate": "no"}', '"calibrate" is "no"; expected true or false'),
        ('{"settings": "oops"}', '"settings" is "oops"; expected an object'),
    ],
)
def test_hand_edited_results_json_is_one_line_naming_it(run_folder, tmp_path, capsys, results, problem):  # noqa: F811
    folder = tmp_path / 'run'
    shutil.copytree(run_folder, folder)
    (folder / 'results.json').write_text(results, encoding='utf-8')
    source = jsonl(tmp_path / 'in.jsonl', [{'text': '春天很好'}])
    with pytest.raises(SystemExit) as stop:
        commands.main(['predict', '--model-dir', str(folder), '--input', str(source)])
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith('error: %s: %s' % (folder / 'results.json', problem)), line


def test_resume_with_a_run_json_that_is_not_a_run_state_is_one_line(checkpoint, tmp_path, capsys):  # noqa: F811
    files = task_files(tmp_path / 'data')
    out = tmp_path / 'run'
    out.mkdir()
    (out / 'run.json').write_text('{}', encoding='utf-8')
    with pytest.raises(SystemExit) as stop:
        commands.main(train_argv(checkpoint, files, out, '--mode', 'few-shot', '--resume'))
    assert stop.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'run.json: not the run state this run wrote (settings, training_data' in line, line


def test_a_config_with_fewer_layers_than_its_checkpoint_is_refused(tmp_path):
    from tiny import make_mlm, write_vocab

    tok = make_tokenizer()
    folder = tmp_path / 'ckpt'
    mlm = make_mlm(len(tok._token_dict), tmp_path / 'build', hidden=32, layers=2, max_position=64)
    mlm.save_checkpoint(str(folder), mlm.config, write_vocab(tmp_path / 'vocab.txt'))
    config = json.loads((folder / 'bert_config.json').read_text(encoding='utf-8'))
    (folder / 'fewer.json').write_text(json.dumps(dict(config, num_hidden_layers=1)), encoding='utf-8')
    from pet_keras.model import build_mlm

    with pytest.raises(ValueError, match=r'holds encoder layer\(s\) 1 that the config \(1 layers\) leaves unused'):
        build_mlm(str(folder / 'fewer.json'), str(folder / 'bert_model.ckpt'))
    build_mlm(str(folder / 'bert_config.json'), str(folder / 'bert_model.ckpt'))  # the saved config loads


@pytest.mark.parametrize(
    'columns, message',
    [
        ('text, label', None),  # spaces after commas are not part of the names
        ('', "--columns '': an empty column name"),
        ('text,,label', "--columns 'text,,label': an empty column name"),
    ],
)
def test_columns_with_spaces_read_and_empty_names_are_one_line(checkpoint, tmp_path, capsys, columns, message):  # noqa: F811
    data = tmp_path / 'data.txt'
    data.write_text('春天很好\tgood\n秋天不好\tbad\n', encoding='utf-8')
    argv = ['train', '--checkpoint-dir', str(checkpoint), '--pattern', '____{text}', '--mode', 'zero-shot']
    argv += ['--columns', columns, '--maxlen', '32', '--label-words', json.dumps({'good': '很', 'bad': '不'})]
    argv += ['--out', str(tmp_path / 'out')] + sum((['--' + s, str(data)] for s in ('train', 'valid', 'test')), [])
    if message is None:
        assert commands.main(argv) == 0
        return
    with pytest.raises(SystemExit) as stop:
        commands.main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_a_task_file_with_a_non_string_column_is_one_line_naming_it(tmp_path):
    from pet_keras.taskfile import task_file_flags

    task = tmp_path / 'task.json'
    task.write_text(json.dumps({'columns': ['text', 1]}), encoding='utf-8')
    with pytest.raises(ValueError, match=r'task.json: "columns" is \["text", 1\]; expected a list of column names'):
        task_file_flags(str(task), {'--columns'})


@pytest.mark.parametrize('labels', [('ab', 'cd'), ('0', '1')])
def test_label_names_that_are_not_whole_words_need_label_words(checkpoint, tmp_path, capsys, labels):  # noqa: F811
    rows = [{'text': '春天很好', 'label': labels[0]}, {'text': '秋天不好', 'label': labels[1]}]
    files = {split: jsonl(tmp_path / ('%s.jsonl' % split), rows) for split in ('train', 'valid', 'test')}
    argv = ['train', '--checkpoint-dir', str(checkpoint), '--pattern', '____{text}', '--mode', 'zero-shot']
    argv += ['--out', str(tmp_path / 'out'), '--maxlen', '32']
    argv += sum((['--' + s, str(p)] for s, p in files.items()), [])
    with pytest.raises(SystemExit) as stop:
        commands.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "label '%s' (tokens " % labels[0] in err and 'not a word the vocabulary spells whole' in err, err
    assert commands.main(argv + ['--label-words', json.dumps({labels[0]: '很', labels[1]: '不'})]) == 0


def interrupted_run(checkpoint, files, out, monkeypatch):  # noqa: F811
    """An 8-step few-shot run in ``out`` stopped by Ctrl-C at its third evaluation (the backup holds two)."""
    from pet_keras import callbacks

    calls, end = [], callbacks.Evaluator.on_epoch_end

    def stop_at_the_third(self, epoch, logs=None):
        end(self, epoch, logs)
        calls.append(epoch)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.Evaluator, 'on_epoch_end', stop_at_the_third)
    argv = train_argv(checkpoint, files, out, '--mode', 'few-shot', '--patience', '0')
    argv[argv.index('--steps') + 1] = '8'
    with pytest.raises(SystemExit):
        commands.main(argv)
    monkeypatch.setattr(callbacks.Evaluator, 'on_epoch_end', end)
    return argv + ['--resume']


def resume_error(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        commands.main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_resume_after_the_validation_file_changed_is_refused(checkpoint, tmp_path, capsys, monkeypatch):  # noqa: F811
    files = task_files(tmp_path / 'data')
    argv = interrupted_run(checkpoint, files, tmp_path / 'run', monkeypatch)
    jsonl(files['valid'], [{'text': '春天很好', 'label': 'bad'}, {'text': '秋天不好', 'label': 'good'}])
    line = resume_error(argv, capsys)
    assert 'cannot resume the run in' in line and 'valid data: {"examples": 6' in line, line


def test_resume_with_a_cut_best_weights_file_is_one_line_before_training(checkpoint, tmp_path, capsys, monkeypatch):  # noqa: F811
    files = task_files(tmp_path / 'data')
    out = tmp_path / 'run'
    argv = interrupted_run(checkpoint, files, out, monkeypatch)
    best = out / 'best_weights.h5'
    best.write_bytes(best.read_bytes()[:100])
    line = resume_error(argv, capsys)
    assert line.startswith('error: %s: not a readable HDF5 weights file' % best), line


def test_a_terminal_that_cannot_show_chinese_gets_escapes_not_a_codec_error(checkpoint, tmp_path):  # noqa: F811
    import os
    import subprocess
    import sys

    rows = [{'text': '春天很好', 'label': '好'}, {'text': '秋天不好', 'label': '不'}]
    files = {split: jsonl(tmp_path / ('%s.jsonl' % split), rows) for split in ('train', 'valid', 'test')}
    argv = [sys.executable, '-m', 'pet_keras.commands', 'train', '--checkpoint-dir', str(checkpoint)]
    argv += ['--pattern', '____{text}', '--mode', 'zero-shot', '--maxlen', '32', '--out', str(tmp_path / 'out')]
    argv += sum((['--' + s, str(p)] for s, p in files.items()), [])
    env = dict(os.environ, PYTHONIOENCODING='latin-1')
    done = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode('latin-1')[-2000:]
    assert b'labels (2): \\u597d, \\u4e0d' in done.stdout


def one_line(argv, capsys):
    """``pet-keras argv``'s one error line (status 2, no traceback)."""
    with pytest.raises(SystemExit) as stop:
        commands.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and 'Traceback' not in err, err
    return err.strip().splitlines()[-1]


def test_a_checkpoint_whose_data_was_zeroed_is_one_line_naming_it(checkpoint, tmp_path, capsys):  # noqa: F811
    damaged = tmp_path / 'damaged'
    shutil.copytree(checkpoint, damaged)
    data = next(damaged.glob('bert_model.ckpt.data-*'))
    data.write_bytes(bytes(data.stat().st_size))  # same size, every byte zero: only the checksums tell
    argv = train_argv(damaged, task_files(tmp_path / 'data'), tmp_path / 'out', '--mode', 'zero-shot')
    line = one_line(argv, capsys)
    assert line.startswith('error: %s' % (damaged / 'bert_model.ckpt')), line
    assert 'checkpoint data is damaged' in line and 'copy or download it again' in line, line


def test_a_full_disk_under_the_training_backup_is_one_line_and_the_run_resumes(
    checkpoint,  # noqa: F811
    tmp_path,
    capsys,
    monkeypatch,  # noqa: F811
):
    import tensorflow as tf

    from pet_keras.compat import keras

    files, out = task_files(tmp_path / 'data'), tmp_path / 'run'
    backup_end = keras.callbacks.BackupAndRestore.on_epoch_end

    def disk_full(self, epoch, logs=None):
        raise tf.errors.ResourceExhaustedError(None, None, '%s/backup/chief/ckpt: No space left on device' % out)

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, 'on_epoch_end', disk_full)
    argv = train_argv(checkpoint, files, out, '--mode', 'few-shot')
    line = one_line(argv, capsys)
    assert line == (
        'error: %s: No space left on device while saving the training state (free some space; the same command '
        'with --resume continues)' % out
    ), line
    assert (out / 'best_weights.h5').is_file()  # nothing lost
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, 'on_epoch_end', backup_end)
    assert commands.main(argv + ['--resume']) == 0


def test_a_field_used_twice_in_the_pattern_is_one_input(checkpoint, tmp_path, capsys):  # noqa: F811
    files = task_files(tmp_path / 'data')
    out = tmp_path / 'run'
    argv = train_argv(checkpoint, files, out, '--mode', 'zero-shot')
    argv[argv.index('--pattern') + 1] = '{text}，____。{text}'
    assert commands.main(argv) == 0
    capsys.readouterr()
    texts = tmp_path / 'texts.txt'
    texts.write_text('春天很好\n秋天不好\n', encoding='utf-8')
    assert commands.main(['predict', '--model-dir', str(out), '--input', str(texts)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r['text'] for r in rows] == ['春天很好', '秋天不好'] and all('prediction' in r for r in rows)
    tok = make_tokenizer()
    pvp = PVP('{text}，____。{text}', Verbalizer({'good': ['很'], 'bad': ['不']}), tok, maxlen=16)
    assert pvp.pattern.fields == ['text']
    from pet_keras.data import Example

    ids = pvp.encode(Example({'text': '春天'}, 'good')).token_ids
    assert tok.decode(ids).count('春天') == 2  # the text fills both places


@pytest.mark.parametrize(
    'edit, message',
    [
        ('pvp', 'pvp.json: aggregation must be one of'),
        ('classifier_labels', 'classifier.json: expected {"labels": [strings]'),
        ('classifier_count', 'classifier_weights.h5 does not fit'),
    ],
)
def test_hand_edited_run_files_are_one_line_naming_the_file(checkpoint, run_folder, tmp_path, capsys, edit, message):  # noqa: F811
    texts = tmp_path / 'texts.txt'
    texts.write_text('春天很好\n', encoding='utf-8')
    if edit == 'pvp':
        folder = tmp_path / 'edited'
        shutil.copytree(run_folder, folder)
        spec = json.loads((folder / 'pvp.json').read_text(encoding='utf-8'))
        (folder / 'pvp.json').write_text(json.dumps(dict(spec, aggregation='median')), encoding='utf-8')
    else:
        folder = tmp_path / 'classifier'
        argv = train_argv(checkpoint, task_files(tmp_path / 'data'), folder, '--mode', 'classifier')
        assert commands.main(argv) == 0
        spec = json.loads((folder / 'classifier.json').read_text(encoding='utf-8'))
        labels = [1, 2] if edit == 'classifier_labels' else spec['labels'] + ['third']
        (folder / 'classifier.json').write_text(json.dumps(dict(spec, labels=labels)), encoding='utf-8')
    line = one_line(['predict', '--model-dir', folder, '--input', texts], capsys)
    assert line.startswith('error: %s' % folder) and message in line, line


def test_label_words_naming_a_folder_is_one_line(checkpoint, tmp_path, capsys):  # noqa: F811
    argv = train_argv(checkpoint, task_files(tmp_path / 'data'), tmp_path / 'out', '--mode', 'zero-shot')
    (tmp_path / 'words').mkdir()
    argv[argv.index('--label-words') + 1] = str(tmp_path / 'words')
    line = one_line(argv, capsys)
    assert line == 'error: --label-words %s is a folder; expected a JSON file or inline JSON' % (tmp_path / 'words')


@pytest.mark.parametrize(
    'task, message',
    [
        ({'help': True}, 'unknown key "help"'),
        ({'paternn': '____{text}'}, 'unknown key "paternn" (did you mean "pattern"?)'),
    ],
)
def test_a_task_file_key_that_is_not_a_flag_is_one_line_naming_the_file(tmp_path, capsys, task, message):
    path = tmp_path / 'task.json'
    path.write_text(json.dumps(task), encoding='utf-8')
    line = one_line(['train', '--task', path], capsys)
    assert line.startswith('error: --task %s: ' % path) and message in line, line


def test_an_ascii_locale_is_named_not_blamed_on_the_vocabulary(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, LC_ALL='C', PYTHONUTF8='0', PYTHONCOERCECLOCALE='0')
    argv = [sys.executable, '-m', 'pet_keras.commands', 'train', '--pattern', '____满意。{text}', '--mode', 'zero-shot']
    done = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    err = done.stderr.decode('ascii', 'replace').strip().splitlines()
    assert done.returncode == 2 and 'Traceback' not in '\n'.join(err)
    assert 'cannot read; run under a UTF-8 locale (e.g. LC_ALL=C.UTF-8) or with PYTHONUTF8=1' in err[-1], err[-1]
