"""Generative augmentation: models that learn what document pixels look like and make
training lines from them (METHODS.md sections 2 and 3).

- :mod:`.erase`: region dropout on a batch of lines (Random Erasing's rectangles), the hole
  filled flat, with noise, or by a patch generator;
- :mod:`.patchgan`: the patch generator and its discriminator (seed 001), their training
  command and gallery;
- :mod:`.san`: SAN, the self-adversarial background generator (seed 002), its training
  command, gallery and FID-like distance;
- :mod:`.backgrounds`: SAN's samples behind text lines and as no-text images;
- :mod:`.io`: saving and loading them (safetensors, the config in the metadata).
"""
