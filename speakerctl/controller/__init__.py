"""Domain logic over the protocol, the link, the store and the audio library."""
