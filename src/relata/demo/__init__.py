"""A seeded, realistic, synthetic German customer data set with exact ground truth."""

from relata.demo.generator import DemoManifest, DemoSource, DemoStats, generate, generate_with_stats

__all__ = ["DemoManifest", "DemoSource", "DemoStats", "generate", "generate_with_stats"]
