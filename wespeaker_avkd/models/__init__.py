"""Audio and visual students, fusion teachers and projection heads; importing registers them."""
# Each import registers its classes: arc_margin, ResNet18..293, VisualResNet34, fusions gate/concat/attention.
from wespeaker_avkd.models import (attention_fusion, concat_fusion, gate_fusion, projections,  # noqa: F401
                                   resnet, visual_resnet)
