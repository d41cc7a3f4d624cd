"""The ShapesEdit demo model: a small BAGEL trained from scratch on the synthetic world with the repository's own
pipeline (world tokenizer, small FLUX-architecture autoencoder, initial folder, SFT, exact-judge evaluation), and
the Meta-CoT ablation run on it."""
