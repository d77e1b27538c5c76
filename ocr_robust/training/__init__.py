"""Training: the config, the Trainer and its parts, and the training modes (one file each):
``config.py`` (TrainConfig: every field, its default, YAML loading), ``trainer.py``
(Trainer.fit, the loop; evaluate), ``schedule.py`` (the learning rate), ``checkpoint.py``
(the resumable state), ``stopping.py`` (signals, the STOP file, plateaus) and ``modes/``
(natural, realtime and the defences it is compared with)."""

from .config import TrainConfig
from .modes import MODES, StepContext, TrainingMode, make_mode, register_mode
from .trainer import Trainer, evaluate, seed_everything

__all__ = ["TrainConfig", "Trainer", "evaluate", "seed_everything", "MODES", "StepContext", "TrainingMode",
           "make_mode", "register_mode"]
