"""Audio and visual students, fusion teachers and projection heads; importing registers them."""
from wespeaker_avkd.models import projections, resnet  # noqa: F401  (register arc_margin, ResNet*)
