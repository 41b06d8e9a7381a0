"""Audio and visual students, fusion teachers and projection heads; importing registers them."""
# Each import registers its classes: arc_margin, ResNet18..293, VisualResNet34.
from wespeaker_avkd.models import projections, resnet, visual_resnet  # noqa: F401
