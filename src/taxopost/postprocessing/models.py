"""Post-processing keeps no tables of its own: its outputs are Classifications and Jobs."""
