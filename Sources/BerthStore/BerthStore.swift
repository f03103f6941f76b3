// BerthStore: see the issue; filled in by its own work.
