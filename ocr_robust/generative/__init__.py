"""Generative augmentation: models that learn what document pixels look like and make
training lines from them (METHODS.md sections 2 and 3).

- :mod:`.erase`: region dropout on a batch of lines (Random Erasing's rectangles), the hole
  filled flat, with noise, or by a patch generator;
- :mod:`.patchgan`: the patch generator and its discriminator (seed 001), their training
  command and gallery.
"""
