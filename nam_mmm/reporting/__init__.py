"""What a person reads: the console summary of a run (plots and reports build on the run folder)."""
