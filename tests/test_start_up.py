"""``pet-keras`` answers --help and flag errors before TensorFlow loads; ``import pet_keras``
before bert4keras still applies pet_keras.compat's fixes."""

import subprocess
import sys

import pytest


def python(code):
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.parametrize(
    'argv',
    [['--help'], ['train', '--help'], ['predict', '--help'], ['train', '--steps', 'x'], ['train', '--mode', 'x']],
)
def test_help_and_flag_errors_do_not_load_tensorflow(argv):
    code = (
        'import sys\nfrom pet_keras import commands\ntry:\n    commands.main(%r)\nexcept SystemExit as e:\n'
        '    print(e.code)\nprint("tensorflow" in sys.modules)' % argv
    )
    status, loaded = python(code)[-2:]
    assert status == ('0' if '--help' in argv else '2') and loaded == 'False'


def test_a_task_file_is_read_before_tensorflow_loads(tmp_path):
    task = tmp_path / 'task.json'
    task.write_text('{"paternn": "____{text}"}', encoding='utf-8')
    code = (
        'import sys\nfrom pet_keras import commands\ntry:\n    commands.main(["train", "--task", %r])\n'
        'except SystemExit as e:\n    print(e.code)\nprint("tensorflow" in sys.modules)' % str(task)
    )
    assert python(code)[-2:] == ['2', 'False']


def test_import_pet_keras_then_bert4keras_gets_the_fixes():
    code = (
        'import pet_keras, sys\nprint("tensorflow" in sys.modules)\n'
        'from bert4keras.models import Transformer\nfrom bert4keras.snippets import DataGenerator\n'
        'print(Transformer.save_weights_as_checkpoint.__module__, DataGenerator.forfit.__module__)'
    )
    assert python(code) == ['False', 'pet_keras.compat', 'pet_keras.compat']


def test_bert4keras_before_pet_keras_is_refused():
    done = subprocess.run(
        [sys.executable, '-c', 'import bert4keras.backend, pet_keras'], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and 'import pet_keras before bert4keras' in done.stderr
