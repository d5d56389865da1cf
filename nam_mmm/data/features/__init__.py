"""Features: the feature table with roles and model specs, adstock and lag stacks, the per-fold scaling, the linear
design of the baselines, and the model's inputs (lag stacks, SKU -> brand index) shared by training and serving."""
