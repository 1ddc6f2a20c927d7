"""`python -m speakerctl` runs the CLI."""

from speakerctl.cli.main import main

main()
