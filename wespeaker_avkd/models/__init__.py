"""Audio and visual students, fusion teachers and projection heads; importing registers them."""
