"""Review pages: what a post-processing job changed on a capture set, and whether it helped."""
