// The per-container monitor: filled in by the engine work.
