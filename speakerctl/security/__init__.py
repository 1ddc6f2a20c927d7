"""Controller-side security: command-signing keys, device credentials, broker access rules."""
