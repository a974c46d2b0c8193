"""widespec curation: workspace, store, taxonomy and the stages that build a wide-spectrum aesthetics dataset."""

__version__ = "0.1.0"
