"""The calendar of periods: frequencies and period starts, retail events, and the features of the period alone."""
