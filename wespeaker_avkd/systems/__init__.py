"""System kinds (audio student, visual student, fusion teacher) and the builders that turn a config into a model."""
