"""batchgen: turn a spreadsheet of prompts into generated videos, resumably, never paying twice."""

__version__ = "0.1.0"
