"""Command-line interface (`steerlab ...`)."""
