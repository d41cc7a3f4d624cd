"""Flow-GRPO (Meta-CoT stage 2): SDE rollouts of the generation expert, rewards, and the GRPO update."""
