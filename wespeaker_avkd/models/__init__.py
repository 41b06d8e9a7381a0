"""Audio and visual students, fusion teachers and projection heads; importing registers them."""
# Each import registers its classes: arc_margin, ResNet18..293, VisualResNet34, fusions gate/concat/attention.
from wespeaker_avkd.models import attention_fusion, concat_fusion, gate_fusion, projections, resnet, visual_resnet  # noqa: F401
from wespeaker_avkd.models.margin_scheduler import MarginScheduler
from wespeaker_avkd.models.visual_resnet import segment_embedding

__all__ = ["MarginScheduler", "segment_embedding"]
